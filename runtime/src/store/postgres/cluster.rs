//! The cluster check on open. Events sort by the transaction id that wrote them, and
//! transaction ids count in one cluster only: restored into another cluster whose counter is
//! behind, a schema would take new events that sort before the stored ones, and every
//! subscriber past them would never see them. So no store opens on such a schema; the
//! error says how far to advance the cluster.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Executor, PgConnection, PgPool, Postgres};

use crate::store::OpenError;
use crate::store::sql::Refused;

/// Transaction ids that `pg_resetwal -x` can start from: the commit log is kept in files of
/// this many transactions, and a start on a file's boundary has the server create the file.
const XACT_FILE: u64 = 0x10_0000;

/// What the check reads: the schema's highest stored transaction id, the cluster's next
/// one, and the system identifiers of this cluster and of the one recorded with the schema.
#[derive(Clone, Copy, Debug)]
struct Cluster {
    stored: Option<u64>,
    next: u64,
    id: u64,
    recorded: Option<u64>,
}

impl Cluster {
    /// Reads the numbers for `quoted` (the quoted schema name) on `executor`.
    async fn read<'c>(
        executor: impl Executor<'c, Database = Postgres>,
        quoted: &str,
    ) -> Result<Self, sqlx::Error> {
        let sql = format!(
            "SELECT (SELECT transaction_id FROM {quoted}.annals_events \
                     ORDER BY transaction_id DESC LIMIT 1)::text::bigint, \
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint, \
                    (SELECT system_identifier FROM pg_control_system()), \
                    (SELECT system_identifier FROM {quoted}.annals_cluster)"
        );
        let (stored, next, id, recorded): (Option<i64>, i64, i64, Option<i64>) =
            sqlx::query_as(&sql).fetch_one(executor).await?;
        // Transaction ids are `xid8` values, which PostgreSQL keeps below 2^63. A system
        // identifier is a `uint64` that the catalog shows as `bigint`: its bits are kept.
        Ok(Self {
            stored: stored.map(i64::unsigned_abs),
            next: next.unsigned_abs(),
            id: u64::from_ne_bytes(id.to_ne_bytes()),
            recorded: recorded.map(|id| u64::from_ne_bytes(id.to_ne_bytes())),
        })
    }

    /// Whether events appended now could sort before a stored one.
    fn behind(&self) -> bool {
        self.stored.is_some_and(|stored| stored >= self.next)
    }

    /// The refusal for `schema`.
    fn refusal(&self, schema: &str) -> OpenError {
        let stored = self.stored.unwrap_or_default();
        OpenError::TransactionIdsBehind {
            schema: schema.to_owned(),
            stored,
            next: self.next,
            cluster: self.id,
            recorded: self.recorded,
            advance: advance_past(stored),
        }
    }
}

/// The check on open: refuses `schema` (a validated identifier) when its stored
/// transaction ids are not all behind this cluster's next one; otherwise records this
/// cluster as the schema's.
pub(super) async fn check(pool: &PgPool, schema: &str) -> Result<(), OpenError> {
    let quoted = format!("\"{schema}\"");
    let failed = |e| OpenError::refused("PostgreSQL", Refused::Sql(e));
    let cluster = Cluster::read(pool, &quoted).await.map_err(failed)?;
    if cluster.behind() {
        return Err(cluster.refusal(schema));
    }
    if cluster.recorded != Some(cluster.id) {
        if let Some(recorded) = cluster.recorded {
            tracing::info!(
                schema,
                from = recorded,
                to = cluster.id,
                "the schema moved to another PostgreSQL cluster, whose transaction ids are past its events"
            );
        }
        let record = format!(
            "INSERT INTO {quoted}.annals_cluster (system_identifier) VALUES ($1) \
             ON CONFLICT (only_row) DO UPDATE SET system_identifier = excluded.system_identifier, \
             opened_at = now()"
        );
        sqlx::query(&record)
            .bind(i64::from_ne_bytes(cluster.id.to_ne_bytes()))
            .execute(pool)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// The same check on every connection a store makes once it is open: the address may now
/// lead to another server, with a restored copy of the schema. A connection that finds the
/// cluster behind is not used; until a newer connection finds it past, the store's
/// operations fail with the refusal.
#[derive(Debug)]
pub(super) struct Guard {
    schema: String,
    /// Off while the store opens: the schema may not exist yet, and `check` covers it.
    armed: AtomicBool,
    refused: Mutex<Option<Cluster>>,
}

impl Guard {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            armed: AtomicBool::new(false),
            refused: Mutex::new(None),
        }
    }

    /// Checks every connection made from now on.
    pub(super) fn arm(&self) {
        self.armed.store(true, Ordering::Release);
    }

    /// Checks the cluster behind `conn`, a connection just made.
    pub(super) async fn on_connect(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.armed.load(Ordering::Acquire) {
            return Ok(());
        }
        let cluster = Cluster::read(conn, &format!("\"{}\"", self.schema)).await?;
        if let Ok(mut refused) = self.refused.lock() {
            *refused = cluster.behind().then_some(cluster);
        }
        Ok(())
    }

    /// The refusal, while the latest connection made found the cluster behind.
    pub(super) fn refusal(&self) -> Option<OpenError> {
        let refused = *self.refused.lock().ok()?;
        refused.map(|cluster| cluster.refusal(&self.schema))
    }
}

/// The first transaction id past `stored` on a commit-log file's boundary.
fn advance_past(stored: u64) -> u64 {
    (stored / XACT_FILE)
        .saturating_add(1)
        .saturating_mul(XACT_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_to_the_next_file_boundary() {
        assert_eq!(advance_past(0), XACT_FILE);
        assert_eq!(advance_past(4_718_765), 5 * XACT_FILE);
        assert_eq!(advance_past(5 * XACT_FILE - 1), 5 * XACT_FILE);
        assert_eq!(advance_past(5 * XACT_FILE), 6 * XACT_FILE);
        assert_eq!(advance_past((7 << 32) + 12), (7 << 32) + XACT_FILE);
    }
}
