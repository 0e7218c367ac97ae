//! Reads of the global order from the SQLite store, on the pool of read connections
//! (a stream's reads are shared with PostgreSQL: `store::sql`).

use sqlx::{Sqlite, SqlitePool};

use super::statements::{FOLD_ALL, READ_ALL};
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::StoreError;
use crate::store::sql::{bound, fold_global, limit, record_from_row};

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
    rows.iter().map(record_from_row::<Sqlite>).collect()
}

pub(super) async fn fold_all<F, E>(
    pool: &SqlitePool,
    after: Checkpoint,
    max: usize,
    f: F,
) -> Result<usize, E>
where
    F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    let rows = sqlx::query(FOLD_ALL)
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch(pool);
    fold_global::<Sqlite, _, _>(rows, f).await
}
