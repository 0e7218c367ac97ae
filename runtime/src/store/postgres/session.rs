//! The PostgreSQL session: one pooled connection for a command's reads and append,
//! checked out when first needed.

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};

use super::cluster::Guard;
use super::{PostgresStore, read, snapshot};
use crate::event::{Checkpoint, NewEvent, RecordedEvent, StoredEvent};
use crate::store::sql::{self, SnapshotRows, without_snapshot};
use crate::store::{
    AppendResult, ExpectedVersion, SnapshotRead, SnapshotRecord, StoreError, StoreSession,
    VersionRange,
};

/// A [`PostgresStore`] session: one pooled connection for a command's load and append,
/// checked out when first needed.
pub struct PostgresSession<'a> {
    pub(super) conn: Lazy<'a>,
    pub(super) store: &'a PostgresStore,
}

impl std::fmt::Debug for PostgresSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSession")
            .field("schema", &self.store.schema())
            .field("connected", &self.conn.conn.is_some())
            .finish()
    }
}

impl StoreSession for PostgresSession<'_> {
    async fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.store
            .append_on(&mut self.conn, stream, expected, events)
            .await
    }

    async fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = &self.store.sql.read_stream;
        sql::read_stream(self.conn.get().await?, sql, stream, range).await
    }

    async fn fold_stream<F, E>(&mut self, stream: &str, range: VersionRange, f: F) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        let sql = &self.store.sql.fold_stream;
        sql::fold_stream(self.conn.get().await?, sql, stream, range, f).await
    }

    async fn read_all(
        &mut self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(self.conn.get().await?, &self.store.sql, after, limit).await
    }

    async fn fold_all<F, E>(&mut self, after: Checkpoint, limit: usize, f: F) -> Result<usize, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        // On a checked-out connection: a pool's stream relays every row through a second
        // stream of its own, which costs more than decoding the row.
        let rows = read::fold_rows(self.conn.get().await?, &self.store.sql, after, limit);
        sql::fold_global::<Postgres, _, _>(rows, f).await
    }

    async fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        read::stream_version(self.conn.get().await?, &self.store.sql, stream).await
    }

    async fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        let conn = self.conn.get().await?;
        match snapshot::read_from_snapshot(conn, &self.store.sql, stream, fingerprint, to).await? {
            SnapshotRows::Read(read) => Ok(read),
            SnapshotRows::Unreadable(error) => without_snapshot(self, stream, to, error).await,
        }
    }

    async fn read_snapshot(&mut self, stream: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        snapshot::read_snapshot(self.conn.get().await?, &self.store.sql, stream).await
    }

    async fn write_snapshot(&mut self, snapshot: SnapshotRecord) -> Result<(), StoreError> {
        snapshot::write_snapshot(self.conn.get().await?, &self.store.sql, snapshot).await
    }
}

/// A pool connection taken on first use: a command served from the aggregate cache, whose
/// append another command's group commit writes, never checks one out.
pub(super) struct Lazy<'a> {
    pool: &'a PgPool,
    guard: &'a Guard,
    conn: Option<PoolConnection<Postgres>>,
}

impl<'a> Lazy<'a> {
    pub(super) fn new(pool: &'a PgPool, guard: &'a Guard) -> Self {
        Self {
            pool,
            guard,
            conn: None,
        }
    }

    /// The session's connection, taken from the pool on first use; refused while the pool's
    /// latest new connection found a cluster behind the stored events.
    pub(super) async fn get(&mut self) -> Result<&mut PgConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let conn = self.pool.acquire().await.map_err(StoreError::backend)?;
                if let Some(refused) = self.guard.refusal() {
                    return Err(refused.into());
                }
                conn
            }
        };
        Ok(&mut **self.conn.insert(conn))
    }
}
