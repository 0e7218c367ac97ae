//! The cluster check on open. Events sort by the transaction id that wrote them, and
//! transaction ids count in one cluster only: restored into another cluster whose counter is
//! behind, a schema would take new events that sort before the stored ones, and every
//! subscriber past them would never see them. So no store opens on such a schema; the
//! error says how far to advance the cluster.

use sqlx::PgPool;

use crate::store::OpenError;

/// Transaction ids that `pg_resetwal -x` can start from: the commit log is kept in files of
/// this many transactions, and a start on a file's boundary has the server create the file.
const XACT_FILE: u64 = 0x10_0000;

/// Refuses `schema` (a validated identifier) when its stored transaction ids are not all
/// behind this cluster's next one; otherwise records this cluster as the schema's.
pub(super) async fn check(pool: &PgPool, schema: &str) -> Result<(), OpenError> {
    let quoted = format!("\"{schema}\"");
    let sql = format!(
        "SELECT (SELECT transaction_id FROM {quoted}.annals_events \
                 ORDER BY transaction_id DESC LIMIT 1)::text::bigint, \
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint, \
                (SELECT system_identifier FROM pg_control_system()), \
                (SELECT system_identifier FROM {quoted}.annals_cluster)"
    );
    let failed = |e| OpenError::refused("PostgreSQL", crate::store::sql::Refused::Sql(e));
    let (stored, next, cluster, recorded): (Option<i64>, i64, i64, Option<i64>) =
        sqlx::query_as(&sql).fetch_one(pool).await.map_err(failed)?;
    // Both are `xid8` values, which PostgreSQL keeps below 2^63; the identifier is a
    // `uint64` shown as `bigint`, so its bits are kept as they are.
    let (next, cluster) = (next.unsigned_abs(), cluster as u64);
    let recorded = recorded.map(|id| id as u64);
    if let Some(stored) = stored.map(i64::unsigned_abs)
        && stored >= next
    {
        return Err(OpenError::TransactionIdsBehind {
            schema: schema.to_owned(),
            stored,
            next,
            cluster,
            recorded,
            advance: advance_past(stored),
        });
    }
    if recorded != Some(cluster) {
        if let Some(recorded) = recorded {
            tracing::info!(
                schema,
                from = recorded,
                to = cluster,
                "the schema moved to another PostgreSQL cluster, whose transaction ids are past its events"
            );
        }
        let record = format!(
            "INSERT INTO {quoted}.annals_cluster (system_identifier) VALUES ($1) \
             ON CONFLICT (only_row) DO UPDATE SET system_identifier = excluded.system_identifier, \
             opened_at = now()"
        );
        sqlx::query(&record)
            .bind(cluster as i64)
            .execute(pool)
            .await
            .map_err(failed)?;
    }
    Ok(())
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
