//! Reads of the global order from a PostgreSQL store, on one connection (a stream's
//! reads are shared with SQLite: `store::sql`).

use futures_core::stream::BoxStream;
use sqlx::Postgres;
use sqlx::postgres::{PgConnection, PgRow};

use super::statements::Statements;
use crate::event::{Checkpoint, RecordedEvent};
use crate::store::sql::{self, bound, limit, records_until_unreadable};
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
    records_until_unreadable::<Postgres>(&rows)
}

/// The lean rows of the global order after `after`, at most `max`, as they arrive.
pub(super) fn fold_rows<'c>(
    conn: &'c mut PgConnection,
    sql: &'c Statements,
    after: Checkpoint,
    max: usize,
) -> BoxStream<'c, Result<PgRow, sqlx::Error>> {
    sqlx::query(&sql.fold_all)
        .bind(bound(after.transaction_id))
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch(conn)
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
