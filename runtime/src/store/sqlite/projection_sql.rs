//! The projection SQL of a SQLite store. Each statement on documents reaches them through
//! the whole primary key, which the tests below check in the plans of a database that was
//! never analyzed.

pub(super) const LIVE: &str = "SELECT generation, transaction_id, position, inline FROM annals_projections \
     WHERE name = ?1 AND version = ?2 AND live = 1";
/// The generation a runner works on: the live one, or else the one being built.
pub(super) const OPEN: &str = "SELECT generation, transaction_id, position, inline, live \
     FROM annals_projections WHERE name = ?1 AND version = ?2 \
     ORDER BY live DESC, generation LIMIT 1";
/// A new version is built unseen while an older one serves (`WHERE true` tells the parser
/// that `ON CONFLICT` belongs to the insert).
pub(super) const START: &str = "INSERT INTO annals_projections (name, version, generation, live, updated_at) \
     SELECT ?1, ?2, 1, NOT EXISTS (SELECT 1 FROM annals_projections \
       WHERE name = ?1 AND version < ?2 AND live = 1), ?3 WHERE true \
     ON CONFLICT DO NOTHING";
pub(super) const VERSIONS: &str = "SELECT version, MAX(live) FROM annals_projections WHERE name = ?1 \
     GROUP BY version ORDER BY version";
pub(super) const CHECKPOINT: &str = "SELECT transaction_id, position FROM annals_projections \
     WHERE name = ?1 AND version = ?2 AND generation = ?3";
/// The keys come as one JSON array: one statement, whatever their number.
pub(super) const LOAD: &str = "SELECT key, body FROM annals_documents \
     WHERE name = ?1 AND version = ?2 AND generation = ?3 \
       AND key IN (SELECT value FROM json_each(?4)) ORDER BY key";
pub(super) const ADVANCE: &str = "UPDATE annals_projections SET transaction_id = ?4, position = ?5, updated_at = ?8 \
     WHERE name = ?1 AND version = ?2 AND generation = ?3 AND transaction_id = ?6 AND position = ?7";
/// The changed documents come as one JSON object of key to body (`WHERE true` tells the
/// parser that `ON CONFLICT` belongs to the insert).
pub(super) const UPSERT: &str = "INSERT INTO annals_documents (name, version, generation, key, body) \
     SELECT ?1, ?2, ?3, j.key, j.value FROM json_each(?4) j WHERE true \
     ON CONFLICT (name, version, generation, key) DO UPDATE SET body = excluded.body";
pub(super) const DELETE: &str = "DELETE FROM annals_documents WHERE name = ?1 AND version = ?2 \
     AND generation = ?3 AND key IN (SELECT value FROM json_each(?4))";
/// The live generation found first, so that the whole key reaches each document (a join
/// on it scans every document of the version).
pub(super) const READ_LIVE: &str = "SELECT d.key, d.body FROM annals_documents d \
     WHERE d.name = ?1 AND d.version = ?2 AND d.generation = (SELECT generation \
       FROM annals_projections WHERE name = ?1 AND version = ?2 AND live = 1) \
       AND d.key IN (SELECT value FROM json_each(?3)) \
     ORDER BY d.key";
/// As [`READ_LIVE`]; the bound on `key` alone starts the walk at the page, in key order.
pub(super) const LIST_LIVE: &str = "SELECT d.key, d.body FROM annals_documents d \
     WHERE d.name = ?1 AND d.version = ?2 AND d.generation = (SELECT generation \
       FROM annals_projections WHERE name = ?1 AND version = ?2 AND live = 1) \
       AND d.key >= COALESCE(?3, '') AND (?3 IS NULL OR d.key > ?3) \
     ORDER BY d.key LIMIT ?4";
pub(super) const LOG_AFTER: &str = "SELECT (SELECT MAX(position) FROM annals_events), \
     (SELECT COUNT(*) FROM annals_events WHERE position > ?1), \
     (SELECT recorded_at FROM annals_events WHERE position > ?1 ORDER BY position LIMIT 1)";

pub(super) const DROP_OTHER_DOCUMENTS: &str =
    "DELETE FROM annals_documents WHERE name = ?1 AND version = ?2 AND generation <> ?3";
pub(super) const DROP_DOCUMENTS: &str =
    "DELETE FROM annals_documents WHERE name = ?1 AND version = ?2";
pub(super) const DROP_PROJECTION: &str =
    "DELETE FROM annals_projections WHERE name = ?1 AND version = ?2";
pub(super) const DROP_LETTERS: &str =
    "DELETE FROM annals_dead_letters WHERE name = ?1 AND version = ?2";
pub(super) const DROP_OTHER_LETTERS: &str =
    "DELETE FROM annals_dead_letters WHERE name = ?1 AND version = ?2 AND generation <> ?3";
pub(super) const DROP_OTHER_GENERATIONS: &str =
    "DELETE FROM annals_projections WHERE name = ?1 AND version = ?2 AND generation <> ?3";
pub(super) const NEW_GENERATION: &str = "INSERT INTO annals_projections (name, version, generation, live, updated_at) \
     VALUES (?1, ?2, ?3, 0, ?4)";
pub(super) const MARK_INLINE: &str =
    "UPDATE annals_projections SET inline = 1 WHERE name = ?1 AND version = ?2 AND live = 1";
pub(super) const RECORD_FAILURE: &str = "UPDATE annals_projections SET failure = ?4, stopped = ?5 \
     WHERE name = ?1 AND version = ?2 AND generation = ?3";
pub(super) const STATE: &str = "SELECT COALESCE(MAX(live = 0), 0), MAX(CASE WHEN live = 1 THEN failure END), \
     COALESCE(MAX(CASE WHEN live = 1 THEN stopped END), 0), \
     MAX(CASE WHEN live = 1 THEN updated_at END) \
     FROM annals_projections WHERE name = ?1 AND version = ?2";
pub(super) const UNSET_LIVE: &str =
    "UPDATE annals_projections SET live = 0 WHERE name = ?1 AND version = ?2 AND live = 1";
pub(super) const SET_LIVE: &str = "UPDATE annals_projections SET live = 1, updated_at = ?4 \
     WHERE name = ?1 AND version = ?2 AND generation = ?3";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    /// The plan of `sql`, its parameters bound to `binds`, one step per line.
    async fn plan(store: &SqliteStore, sql: &str, binds: &[&str]) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
        for bind in binds {
            query = query.bind(*bind);
        }
        let steps = query.fetch_all(store.pool()).await.expect("a plan");
        steps
            .into_iter()
            .map(|(.., detail)| detail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every statement on documents finds them by their whole key, in key order, on a
    /// database never analyzed: none walks every document of its projection.
    #[tokio::test]
    async fn documents_are_reached_through_their_whole_key() {
        let store = SqliteStore::in_memory().await.expect("store");
        let whole = "USING PRIMARY KEY (name=? AND version=? AND generation=? AND key";
        for (sql, binds) in [
            (LOAD, &["p", "1", "1", "[]"][..]),
            (DELETE, &["p", "1", "1", "[]"]),
            (READ_LIVE, &["p", "1", "[]"]),
            (LIST_LIVE, &["p", "1", "k", "10"]),
        ] {
            let plan = plan(&store, sql, binds).await;
            assert!(
                plan.contains(whole) && !plan.contains("TEMP B-TREE"),
                "{sql}\n{plan}"
            );
        }
    }
}
