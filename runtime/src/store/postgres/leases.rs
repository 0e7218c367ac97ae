//! Which runner applies what, on PostgreSQL: session advisory locks, each on a connection
//! of its own outside the pools, so that a lock ends by itself when its process dies or
//! its connection drops. Exclusive locks are leases (a projection, a part, a rebuild's
//! parts); a shared lock per projection counts the runners present.

use std::future::Future;
use std::pin::Pin;

use sqlx::postgres::PgConnection;

use super::PostgresStore;
use super::projection_sql::backend;
use crate::projection::{Counted, Held, Lease, Presence, Shard, Slot};
use crate::store::StoreError;

/// The holders of the shared advisory lock on `$1`, in this database.
const HOLDERS: &str = "WITH k AS (SELECT hashtextextended($1, 0) AS k) \
     SELECT count(*) FROM pg_locks, k WHERE locktype = 'advisory' AND granted \
       AND mode = 'ShareLock' AND objsubid = 1 \
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND classid = ((k.k >> 32) & 4294967295)::oid AND objid = (k.k & 4294967295)::oid";

/// A lease on PostgreSQL: session advisory locks, held by this connection.
struct AdvisoryLock(PgConnection);

impl Held for AdvisoryLock {
    fn alive(&mut self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { sqlx::Connection::ping(&mut self.0).await.is_ok() })
    }

    fn release(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        // Closing the session ends its advisory locks.
        Box::pin(async move {
            let _ = sqlx::Connection::close(self.0).await;
        })
    }
}

/// A runner present for a projection: a shared advisory lock on `key`, held by this
/// connection, which also counts the lock's holders.
struct SharedLock {
    conn: PgConnection,
    key: String,
}

impl Counted for SharedLock {
    fn runners(&mut self) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send + '_>> {
        Box::pin(async move {
            let holders: i64 = sqlx::query_scalar(HOLDERS)
                .bind(&self.key)
                .fetch_one(&mut self.conn)
                .await
                .map_err(backend)?;
            Ok(usize::try_from(holders).unwrap_or(1))
        })
    }
}

impl PostgresStore {
    /// A connection of its own, outside the pools, for locks that must end with it.
    async fn lock_connection(&self) -> Result<PgConnection, StoreError> {
        sqlx::Connection::connect_with(&*self.projector.connect_options())
            .await
            .map_err(backend)
    }

    /// A session advisory lock on `key`; `None` when another session holds it.
    pub(super) async fn advisory_lease(&self, key: &str) -> Result<Option<Lease>, StoreError> {
        let mut conn = self.lock_connection().await?;
        if !try_lock(&mut conn, key).await? {
            let _ = sqlx::Connection::close(conn).await;
            return Ok(None);
        }
        Ok(Some(Lease::held(AdvisoryLock(conn))))
    }

    /// The rebuild leases of up to `max` of `parts` of the generation `slot`, all on one
    /// connection (connecting is the dear part).
    pub(super) async fn part_leases(
        &self,
        slot: &Slot,
        parts: &[Shard],
        max: usize,
    ) -> Result<(Vec<Shard>, Lease), StoreError> {
        let mut conn = self.lock_connection().await?;
        let mut granted = Vec::new();
        for &shard in parts {
            if granted.len() >= max {
                break;
            }
            let key = format!(
                "annals.rebuild.{}.{}.{}.{}.{}/{}",
                self.schema(),
                slot.name,
                slot.version,
                slot.generation,
                shard.index,
                shard.count
            );
            if try_lock(&mut conn, &key).await? {
                granted.push(shard);
            }
        }
        Ok((granted, Lease::held(AdvisoryLock(conn))))
    }

    /// Counts this runner among the runners of a projection while the presence is kept.
    pub(super) async fn present(&self, name: &str, version: u32) -> Result<Presence, StoreError> {
        let mut conn = self.lock_connection().await?;
        let key = format!("annals.runners.{}.{name}.{version}", self.schema());
        sqlx::query("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))")
            .bind(&key)
            .execute(&mut conn)
            .await
            .map_err(backend)?;
        Ok(Presence::counted(SharedLock { conn, key }))
    }
}

/// Takes the session advisory lock on `key` on `conn`, if no other session holds it.
async fn try_lock(conn: &mut PgConnection, key: &str) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(conn)
        .await
        .map_err(backend)
}
