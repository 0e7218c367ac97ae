//! SQL-table projections on SQLite: their batches run in a write transaction of the
//! store's one writer.

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::projections::advance;
use super::statements::READ_ALL;
use crate::event::{Checkpoint, RecordedEvent};
use crate::projection::{Backend, Slot, SqlStore};
use crate::store::StoreError;
use crate::store::sql::{bound, limit, records_until_unreadable};

impl Backend for Sqlite {
    type Store = SqliteStore;
}

impl SqlStore for SqliteStore {
    type Database = Sqlite;

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        // The write lock first, as every write of this store takes it.
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::backend)
    }

    async fn advance(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
    ) -> Result<bool, StoreError> {
        advance(tx, slot, from, to).await
    }

    async fn settle_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        action: &str,
    ) -> Result<u64, StoreError> {
        super::dead_letters::settle_in(tx, slot, key, letters, action).await
    }

    async fn read_all_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(READ_ALL)
            .bind(bound(after.position))
            .bind(limit(max))
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::backend)?;
        records_until_unreadable::<Sqlite>(&rows)
    }
}
