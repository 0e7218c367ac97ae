//! The reads of one stream, the same on every SQL backend but for the statement's text
//! and the connection it runs on.

use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::Dialect;
use super::convert::{bound, stored};
use super::row::{DriverRow, for_each_row, record_from_row};
use futures_core::stream::BoxStream;

use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::{StoreError, VersionRange, validate_stream_id};

/// `sql` (records of stream `?1` with versions `?2..=?3`) on `executor`.
pub(crate) async fn read_stream<'c, D, X>(
    executor: X,
    sql: &str,
    stream: &str,
    range: VersionRange,
) -> Result<Vec<RecordedEvent>, StoreError>
where
    D: Dialect,
    X: Executor<'c, Database = D>,
    for<'q> <D as Database>::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    i64: for<'q> Encode<'q, D> + Type<D>,
{
    validate_stream_id(stream)?;
    let rows = sqlx::query(sql)
        .bind(stream)
        .bind(bound(range.from))
        .bind(bound(range.to))
        .fetch_all(executor)
        .await
        .map_err(StoreError::backend)?;
    rows.iter().map(record_from_row::<D>).collect()
}

/// `sql` (lean rows of stream `?1` with versions `?2..=?3`) on `executor`, each row handed
/// to `f` as it arrives.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) async fn fold_stream<'c, D, X, F, E>(
    executor: X,
    sql: &str,
    stream: &str,
    range: VersionRange,
    mut f: F,
) -> Result<(), E>
where
    D: Dialect,
    X: Executor<'c, Database = D>,
    for<'q> <D as Database>::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    i64: for<'q> Encode<'q, D> + Type<D>,
    F: FnMut(StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    validate_stream_id(stream)?;
    let rows = sqlx::query(sql)
        .bind(stream)
        .bind(bound(range.from))
        .bind(bound(range.to))
        .fetch(executor);
    for_each_row(rows, |row| {
        f(StoredEvent::from_row(stream, &DriverRow::<D>(row))?)
    })
    .await?;
    Ok(())
}

/// `sql` (the version of stream `?1`) on `executor`.
pub(crate) async fn stream_version<'c, D, X>(
    executor: X,
    sql: &str,
    stream: &str,
) -> Result<Result<u64, StoreError>, sqlx::Error>
where
    D: Dialect,
    X: Executor<'c, Database = D>,
    for<'q> <D as Database>::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    i64: for<'r> sqlx::Decode<'r, D> + Type<D>,
    usize: sqlx::ColumnIndex<D::Row>,
{
    let version: i64 = sqlx::query_scalar(sql)
        .bind(stream)
        .fetch_one(executor)
        .await?;
    Ok(stored(stream, 0, "stream version", version))
}

/// Hands each lean row of the global order in `rows` to `f` as it arrives, with its
/// checkpoint; returns how many rows `f` took.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) async fn fold_global<D, F, E>(
    rows: BoxStream<'_, Result<D::Row, sqlx::Error>>,
    mut f: F,
) -> Result<usize, E>
where
    D: Dialect,
    F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    for_each_row(rows, |row| {
        let (checkpoint, event) = StoredEvent::from_global_row(&DriverRow::<D>(row))?;
        f(checkpoint, event)
    })
    .await
}
