//! Reads of the global order from a PostgreSQL store, on one connection (a stream's
//! reads are shared with SQLite: `store::sql`).

use sqlx::Postgres;
use sqlx::postgres::PgConnection;

use super::statements::Statements;
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::sql::{self, bound, fold_global, limit, record_from_row};
use crate::store::{StoreError, validate_stream_id};

pub(super) async fn read_all(
    conn: &mut PgConnection,
    sql: &Statements,
    after: Checkpoint,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(&sql.read_all)
        .bind(bound(after.transaction_id))
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    rows.iter().map(record_from_row::<Postgres>).collect()
}

/// Up to `max` events after `after` in global order, each handed to `f` as it arrives.
pub(super) async fn fold_all<F, E>(
    conn: &mut PgConnection,
    sql: &Statements,
    after: Checkpoint,
    max: usize,
    f: F,
) -> Result<usize, E>
where
    F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    let rows = sqlx::query(&sql.fold_all)
        .bind(bound(after.transaction_id))
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch(conn);
    fold_global::<Postgres, _, _>(rows, f).await
}

pub(super) async fn stream_version(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
) -> Result<u64, StoreError> {
    validate_stream_id(stream)?;
    sql::stream_version(conn, &sql.stream_version, stream)
        .await
        .map_err(StoreError::backend)?
}
