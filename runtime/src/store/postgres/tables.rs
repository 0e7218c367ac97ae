//! SQL-table projections on PostgreSQL: each batch in a transaction on one of annals' own
//! connections.

use sqlx::{Postgres, Transaction};

use super::{PostgresStore, read};
use crate::event::{Checkpoint, RecordedEvent};
use crate::projection::{Backend, Slot, SqlStore};
use crate::store::StoreError;

impl Backend for Postgres {
    type Store = PostgresStore;
}

impl SqlStore for PostgresStore {
    type Database = Postgres;

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.tables.begin().await.map_err(StoreError::backend)
    }

    async fn advance(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
    ) -> Result<bool, StoreError> {
        self.projections.advance_on(tx, slot, from, to).await
    }

    async fn settle_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        action: &str,
    ) -> Result<u64, StoreError> {
        PostgresStore::settle_in(self, tx, slot, key, letters, action).await
    }

    async fn read_all_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(tx, &self.sql, after, limit).await
    }
}
