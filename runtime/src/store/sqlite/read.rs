//! Reads of the global order from the SQLite store, on the pool of read connections
//! (a stream's reads are shared with PostgreSQL: `store::sql`).

use futures_core::stream::BoxStream;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqlitePool};

use super::statements::{FOLD_ALL, READ_ALL};
use crate::event::{Checkpoint, RecordedEvent};
use crate::store::StoreError;
use crate::store::sql::{bound, limit, records_until_unreadable};

pub(super) async fn read_all(
    pool: &SqlitePool,
    after: Checkpoint,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(READ_ALL)
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch_all(pool)
        .await
        .map_err(StoreError::backend)?;
    records_until_unreadable::<Sqlite>(&rows)
}

/// The lean rows of the global order after `after`, at most `max`, as they arrive.
pub(super) fn fold_rows(
    pool: &SqlitePool,
    after: Checkpoint,
    max: usize,
) -> BoxStream<'_, Result<SqliteRow, sqlx::Error>> {
    sqlx::query(FOLD_ALL)
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch(pool)
}
