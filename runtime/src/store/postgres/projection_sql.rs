//! The projection SQL of a PostgreSQL store, its schema spliced in once, and the
//! statements that run on a connection the caller holds.

use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::event::Checkpoint;
use crate::projection::{Changes, Shard, Slot};
use crate::store::StoreError;
use crate::store::sql::convert::{checkpoint_at, checkpoint_params};

/// The projection SQL of one store, its schema spliced in once (a validated identifier).
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) live: String,
    pub(super) rebuilding: String,
    pub(super) versions: String,
    pub(super) mark_inline: String,
    pub(super) record_failure: String,
    pub(super) state: String,
    pub(super) start: String,
    pub(super) checkpoint: String,
    pub(super) load: String,
    pub(super) lock: String,
    pub(super) commit: String,
    pub(super) advance: String,
    pub(super) write: String,
    pub(super) lock_live: String,
    pub(super) drop_other_documents: String,
    pub(super) drop_other_generations: String,
    pub(super) drop_documents: String,
    pub(super) park: String,
    pub(super) commit_documents_only: String,
    pub(super) dead_letters: String,
    pub(super) drop_letters: String,
    pub(super) drop_other_letters: String,
    pub(super) settle: String,
    pub(super) record_action: String,
    pub(super) actions: String,
    pub(super) drop_projection: String,
    pub(super) new_generation: String,
    pub(super) unset_live: String,
    pub(super) set_live: String,
    pub(super) read_live: String,
    pub(super) list_live: String,
    pub(super) log_after: String,
    pub(super) head: String,
    pub(super) fold_named: String,
    pub(super) horizon: String,
    pub(super) shards: ShardSql,
}

/// The statements of sharded projections: a checkpoint per part.
#[derive(Debug)]
pub(super) struct ShardSql {
    pub(super) open: String,
    pub(super) checkpoint: String,
    pub(super) commit: String,
    pub(super) caught_up: String,
    pub(super) lock: String,
    pub(super) parts: String,
    pub(super) drop_others: String,
    pub(super) drop_all: String,
}

impl ShardSql {
    fn new(schema: &str, d: &str) -> Self {
        let s = format!("\"{schema}\".annals_projection_shards");
        let gone8 = among_keys("$8");
        Self {
            // Every part at once, so that the slowest is always there to be read.
            open: format!(
                "INSERT INTO {s} (name, version, generation, shard, shards) \
                 SELECT $1, $2, $3, g, $4 FROM generate_series(0, $4 - 1) AS g \
                 ON CONFLICT DO NOTHING"
            ),
            checkpoint: format!(
                "SELECT transaction_id, position, shards FROM {s} \
                 WHERE name = $1 AND version = $2 AND generation = $3 AND shard = $4"
            ),
            // As a whole projection's commit: the documents only if the part's checkpoint
            // moved from where this runner read it.
            commit: format!(
                "WITH moved AS (UPDATE {s} SET transaction_id = $4, position = $5, updated_at = now() \
                   WHERE name = $1 AND version = $2 AND generation = $3 AND shard = $11 \
                     AND transaction_id = $6 AND position = $7 RETURNING 1), \
                 gone AS (DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND {gone8} AND EXISTS (SELECT 1 FROM moved)), \
                 put AS (INSERT INTO {d} (name, version, generation, key, body) \
                   SELECT $1, $2, $3, u.key, u.body::jsonb FROM UNNEST($9::text[], $10::text[]) AS u(key, body) \
                   WHERE EXISTS (SELECT 1 FROM moved) \
                   ON CONFLICT (name, version, generation, key) DO UPDATE SET body = excluded.body) \
                 SELECT count(*) FROM moved"
            ),
            caught_up: format!(
                "UPDATE {s} SET caught_up = true \
                 WHERE name = $1 AND version = $2 AND generation = $3 AND shard = $4 AND NOT caught_up"
            ),
            // The live generation's parts, locked: none commits past them while a
            // generation takes over.
            lock: format!(
                "SELECT shard, transaction_id, position FROM {s} \
                 WHERE name = $1 AND version = $2 AND generation = $3 ORDER BY shard FOR UPDATE"
            ),
            parts: format!(
                "SELECT shard, transaction_id, position, caught_up, shards FROM {s} \
                 WHERE name = $1 AND version = $2 AND generation = $3 ORDER BY shard"
            ),
            drop_others: format!(
                "DELETE FROM {s} WHERE name = $1 AND version = $2 AND generation <> $3"
            ),
            drop_all: format!("DELETE FROM {s} WHERE name = $1 AND version = $2"),
        }
    }
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let p = format!("\"{schema}\".annals_projections");
        let d = format!("\"{schema}\".annals_documents");
        let e = format!("\"{schema}\".annals_events");
        let l = format!("\"{schema}\".annals_dead_letters");
        let a = format!("\"{schema}\".annals_dead_letter_actions");
        let (gone4, gone8) = (among_keys("$4"), among_keys("$8"));
        // Documents are reached key by key through the whole primary key (a lateral
        // probe per key, an upsert on it), not as `key = ANY(...)` under the prefix.
        // Until the table is analyzed (autovacuum off, or just grown), the planner takes
        // `name, version, generation` for one row, and a cached plan then scans every
        // document of the projection per statement: 3.7 ms per inline append at 10,000
        // documents. A probe costs the same whatever the statistics say. Deletes, rare,
        // are bounded by the span of their keys (`among_keys`).
        Self {
            // The checkpoint of a sharded projection is that of its slowest part.
            live: format!(
                "SELECT p.generation, COALESCE(s.transaction_id, p.transaction_id), \
                   COALESCE(s.position, p.position), p.inline, p.live FROM {p} p \
                 LEFT JOIN LATERAL (SELECT transaction_id, position FROM \"{schema}\".annals_projection_shards \
                   WHERE name = p.name AND version = p.version AND generation = p.generation \
                   ORDER BY transaction_id, position LIMIT 1) s ON true \
                 WHERE p.name = $1 AND p.version = $2 ORDER BY p.live DESC, p.generation LIMIT 1"
            ),
            rebuilding: format!(
                "SELECT generation, transaction_id, position, inline, live FROM {p} \
                 WHERE name = $1 AND version = $2 AND NOT live ORDER BY generation DESC LIMIT 1"
            ),
            versions: format!(
                "SELECT version, bool_or(live) FROM {p} WHERE name = $1 \
                 GROUP BY version ORDER BY version"
            ),
            record_failure: format!(
                "UPDATE {p} SET failure = $4, stopped = $5 \
                 WHERE name = $1 AND version = $2 AND generation = $3"
            ),
            // A sharded projection moves when its slowest part does.
            state: format!(
                "SELECT COALESCE(bool_or(NOT live), false), max(failure) FILTER (WHERE live), \
                   COALESCE(bool_or(stopped) FILTER (WHERE live), false), \
                   COALESCE((SELECT min(s.updated_at) FROM \"{schema}\".annals_projection_shards s \
                     JOIN {p} l ON l.name = s.name AND l.version = s.version \
                       AND l.generation = s.generation AND l.live \
                     WHERE s.name = $1 AND s.version = $2), \
                   max(updated_at) FILTER (WHERE live)) \
                 FROM {p} WHERE name = $1 AND version = $2"
            ),
            mark_inline: format!(
                "UPDATE {p} SET inline = true WHERE name = $1 AND version = $2 AND live"
            ),
            start: format!(
                "INSERT INTO {p} (name, version, generation, live) \
                 SELECT $1, $2, 1, NOT EXISTS (SELECT 1 FROM {p} \
                   WHERE name = $1 AND version < $2 AND live) \
                 ON CONFLICT DO NOTHING"
            ),
            checkpoint: format!(
                "SELECT transaction_id, position FROM {p} WHERE name = $1 AND version = $2 AND generation = $3"
            ),
            load: format!(
                "SELECT k.key, x.body FROM UNNEST($4::text[]) AS k(key), \
                 LATERAL (SELECT body::text FROM {d} WHERE name = $1 AND version = $2 \
                   AND generation = $3 AND key = k.key OFFSET 0) x"
            ),
            // An inline projection's documents, locked until the append commits, in the
            // order of `keys`, sorted by the caller (two appends that share documents lock
            // them in one order): a concurrent append changing one waits, then reads what
            // this one wrote.
            lock: format!(
                "SELECT k.key, x.body FROM UNNEST($4::text[]) AS k(key), \
                 LATERAL (SELECT body::text FROM {d} WHERE name = $1 AND version = $2 \
                   AND generation = $3 AND key = k.key FOR UPDATE) x"
            ),
            // The checkpoint moves only from where the batch started; the documents change
            // only if it did. A second runner's update waits for the first to commit, then
            // finds the checkpoint moved and changes nothing.
            commit: format!(
                "WITH moved AS (UPDATE {p} SET transaction_id = $4, position = $5, updated_at = now() \
                   WHERE name = $1 AND version = $2 AND generation = $3 \
                     AND transaction_id = $6 AND position = $7 RETURNING 1), \
                 gone AS (DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND {gone8} AND EXISTS (SELECT 1 FROM moved)), \
                 put AS (INSERT INTO {d} (name, version, generation, key, body) \
                   SELECT $1, $2, $3, u.key, u.body::jsonb FROM UNNEST($9::text[], $10::text[]) AS u(key, body) \
                   WHERE EXISTS (SELECT 1 FROM moved) \
                   ON CONFLICT (name, version, generation, key) DO UPDATE SET body = excluded.body) \
                 SELECT count(*) FROM moved"
            ),
            advance: format!(
                "UPDATE {p} SET transaction_id = $4, position = $5, updated_at = now() \
                 WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND transaction_id = $6 AND position = $7"
            ),
            // The documents alone, for inline projections inside an append's transaction:
            // those it locked are overwritten; new ones are inserted only if still absent,
            // and the count tells the caller whether another append created one meanwhile.
            write: format!(
                "WITH gone AS (DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND {gone4}), \
                 changed AS (INSERT INTO {d} (name, version, generation, key, body) \
                   SELECT $1, $2, $3, u.key, u.body::jsonb FROM UNNEST($5::text[], $6::text[]) AS u(key, body) \
                   ON CONFLICT (name, version, generation, key) DO UPDATE SET body = excluded.body), \
                 added AS (INSERT INTO {d} (name, version, generation, key, body) \
                   SELECT $1, $2, $3, u.key, u.body::jsonb FROM UNNEST($7::text[], $8::text[]) AS u(key, body) \
                   ON CONFLICT (name, version, generation, key) DO NOTHING RETURNING 1) \
                 SELECT count(*) FROM added"
            ),
            lock_live: format!(
                "SELECT generation, transaction_id, position, inline, live FROM {p} \
                 WHERE name = $1 AND version = $2 AND live FOR UPDATE"
            ),
            drop_other_documents: format!(
                "DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation <> $3"
            ),
            drop_documents: format!("DELETE FROM {d} WHERE name = $1 AND version = $2"),
            drop_other_letters: format!(
                "DELETE FROM {l} WHERE name = $1 AND version = $2 AND generation <> $3"
            ),
            drop_letters: format!("DELETE FROM {l} WHERE name = $1 AND version = $2"),
            park: format!(
                "INSERT INTO {l} (name, version, generation, transaction_id, position, stream_id, \
                   stream_version, event_name, event_version, key, error, attempts, \
                   first_failed_at, last_failed_at, behind) \
                 SELECT $1, $2, $3, u.* FROM UNNEST($4::int8[], $5::int8[], $6::text[], $7::int8[], \
                   $8::text[], $9::int4[], $10::text[], $11::text[], $12::int4[], \
                   $13::timestamptz[], $14::timestamptz[], $15::int8[]) AS u \
                 ON CONFLICT DO NOTHING"
            ),
            // Documents stored or deleted, whether they exist or not (upsert).
            commit_documents_only: format!(
                "WITH gone AS (DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND {gone4}) \
                 INSERT INTO {d} (name, version, generation, key, body) \
                 SELECT $1, $2, $3, u.key, u.body::jsonb FROM UNNEST($5::text[], $6::text[]) AS u(key, body) \
                 ON CONFLICT (name, version, generation, key) DO UPDATE SET body = excluded.body"
            ),
            dead_letters: format!(
                "SELECT transaction_id, position, stream_id, stream_version, event_name, \
                   event_version, key, error, attempts, first_failed_at, last_failed_at, behind \
                 FROM {l} WHERE name = $1 AND version = $2 AND generation = $3 \
                 ORDER BY transaction_id, position"
            ),
            settle: format!(
                "DELETE FROM {l} WHERE name = $1 AND version = $2 AND generation = $3 AND key = $4 \
                 AND (transaction_id, position) IN \
                   (SELECT * FROM UNNEST($5::int8[], $6::int8[]))"
            ),
            record_action: format!(
                "INSERT INTO {a} (name, version, action, key, events) VALUES ($1, $2, $3, $4, $5)"
            ),
            actions: format!(
                "SELECT action, key, events, at FROM {a} WHERE name = $1 AND version = $2 \
                 ORDER BY at"
            ),
            drop_projection: format!("DELETE FROM {p} WHERE name = $1 AND version = $2"),
            drop_other_generations: format!(
                "DELETE FROM {p} WHERE name = $1 AND version = $2 AND generation <> $3"
            ),
            new_generation: format!(
                "INSERT INTO {p} (name, version, generation, live) VALUES ($1, $2, $3, false)"
            ),
            unset_live: format!(
                "UPDATE {p} SET live = false WHERE name = $1 AND version = $2 AND live"
            ),
            set_live: format!(
                "UPDATE {p} SET live = true, updated_at = now() \
                 WHERE name = $1 AND version = $2 AND generation = $3"
            ),
            read_live: format!(
                "SELECT k.key, x.body FROM {p} p, UNNEST($3::text[]) AS k(key), \
                 LATERAL (SELECT body::text FROM {d} d WHERE d.name = p.name \
                   AND d.version = p.version AND d.generation = p.generation AND d.key = k.key \
                   OFFSET 0) x \
                 WHERE p.name = $1 AND p.version = $2 AND p.live ORDER BY k.key COLLATE \"C\""
            ),
            // The live generation first, then the bound on `key` alone starts the walk at
            // the page, in key order, whatever the plan.
            list_live: format!(
                "SELECT key, body::text FROM {d} WHERE name = $1 AND version = $2 \
                 AND generation = (SELECT generation FROM {p} WHERE name = $1 AND version = $2 \
                   AND live) \
                 AND key >= COALESCE($3::text, '') AND ($3::text IS NULL OR key > $3) \
                 ORDER BY key LIMIT $4"
            ),
            head: format!(
                // Named apart: as `transaction_id`, the cast would be what `ORDER BY` sorts
                // by, a sort of every row instead of one step down the key.
                "SELECT transaction_id::text::int8 AS head_transaction, position FROM {e} \
                 WHERE transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
                 ORDER BY transaction_id DESC, position DESC LIMIT 1"
            ),
            // `fold_all`'s columns and order, up to a head read before, for some names.
            fold_named: format!(
                "SELECT stream_version, position, event_name, event_version, payload, stream_id, \
                   transaction_id FROM {e} \
                 WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
                   AND (transaction_id, position) <= ($3::int8::text::xid8, $4::int8) \
                   AND event_name = ANY($6) \
                 ORDER BY transaction_id, position LIMIT $5"
            ),
            // The oldest running transaction, whose id is the readers' bound, and what it
            // holds back: a backend's `backend_xid` is that id's low 32 bits.
            horizon: format!(
                "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) \
                 SELECT a.pid, a.application_name, \
                   EXTRACT(EPOCH FROM (now() - a.xact_start))::float8, \
                   (SELECT count(*) FROM {e}, h WHERE transaction_id >= h.xmin) \
                 FROM h LEFT JOIN pg_stat_activity a \
                   ON a.backend_xid::text::int8 = (h.xmin::text::int8 & 4294967295)"
            ),
            // Only what a reader can see: below the oldest running transaction.
            log_after: format!(
                "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) \
                 SELECT \
                   (SELECT transaction_id::text::int8 AS head_transaction FROM {e}, h \
                      WHERE transaction_id < h.xmin \
                      ORDER BY transaction_id DESC, position DESC LIMIT 1), \
                   (SELECT position FROM {e}, h WHERE transaction_id < h.xmin \
                      ORDER BY transaction_id DESC, position DESC LIMIT 1), \
                   (SELECT count(*) FROM {e}, h WHERE transaction_id < h.xmin \
                      AND (transaction_id, position) > ($1::int8::text::xid8, $2::int8)), \
                   (SELECT recorded_at FROM {e}, h WHERE transaction_id < h.xmin \
                      AND (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
                      ORDER BY transaction_id, position LIMIT 1)"
            ),
            shards: ShardSql::new(schema, &d),
        }
    }
}

/// The documents to delete, under the keys in the `text[]` parameter `keys`, found within
/// the span of those keys: a generic plan costed without statistics leaves `key = ANY`
/// out of the index condition, and the span keeps it from scanning every document of
/// the projection (one key is one probe). The span is in the keys' byte order, the
/// column's, whatever the database's collation; an empty list scans nothing.
fn among_keys(keys: &str) -> String {
    format!(
        "key = ANY({keys}) AND cardinality({keys}) > 0 \
         AND key BETWEEN (SELECT min(k COLLATE \"C\") FROM unnest({keys}::text[]) AS k) \
           AND (SELECT max(k COLLATE \"C\") FROM unnest({keys}::text[]) AS k)"
    )
}

impl Sql {
    /// The slot's documents under `keys`, on `conn`, locked until its transaction ends.
    pub(super) async fn lock_on(
        &self,
        conn: &mut sqlx::PgConnection,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        documents_on(&self.lock, conn, slot, keys).await
    }

    /// The slot's documents under `keys`, on `conn`.
    pub(super) async fn load_on(
        &self,
        conn: &mut sqlx::PgConnection,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        documents_on(&self.load, conn, slot, keys).await
    }

    /// Moves the slot's checkpoint from `from` to `to` on `conn`; `false` when it is no
    /// longer at `from`.
    pub(super) async fn advance_on(
        &self,
        conn: &mut sqlx::PgConnection,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
    ) -> Result<bool, StoreError> {
        let (from_tx, from_pos) = checkpoint_params(from);
        let (to_tx, to_pos) = checkpoint_params(to);
        let moved = sqlx::query(&self.advance)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(to_tx)
            .bind(to_pos)
            .bind(from_tx)
            .bind(from_pos)
            .execute(conn)
            .await
            .map_err(backend)?;
        Ok(moved.rows_affected() == 1)
    }

    /// Stores and deletes documents of the slot, on `conn`.
    /// `false`, with nothing to commit, when a document absent from `locked` was
    /// created meanwhile by another transaction.
    pub(super) async fn write_on(
        &self,
        conn: &mut sqlx::PgConnection,
        slot: &Slot,
        changes: Changes,
        locked: &[String],
    ) -> Result<bool, StoreError> {
        let (keys, bodies, deleted) = split(changes);
        let (mut old, mut new) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for (key, body) in keys.into_iter().zip(bodies) {
            let side = if locked.contains(&key) {
                &mut old
            } else {
                &mut new
            };
            side.0.push(key);
            side.1.push(body);
        }
        let expected = new.0.len();
        let added: i64 = sqlx::query_scalar(&self.write)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(&deleted)
            .bind(&old.0)
            .bind(&old.1)
            .bind(&new.0)
            .bind(&new.1)
            .fetch_one(conn)
            .await
            .map_err(backend)?;
        Ok(usize::try_from(added).is_ok_and(|added| added == expected))
    }
}

/// The keys and bodies to store, and the keys to delete.
pub(super) fn split(changes: Changes) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut keys, mut bodies, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for (key, body) in changes {
        match body {
            Some(body) => {
                keys.push(key);
                bodies.push(body);
            }
            None => deleted.push(key),
        }
    }
    (keys, bodies, deleted)
}

pub(super) fn backend(error: sqlx::Error) -> StoreError {
    StoreError::backend(error)
}

pub(super) fn version_param(version: u32) -> Result<i32, StoreError> {
    i32::try_from(version).map_err(|_| {
        StoreError::backend(std::io::Error::other(format!(
            "projection version {version} is beyond the column's {}",
            i32::MAX
        )))
    })
}

pub(super) fn generation_param(slot: &Slot) -> Result<i32, StoreError> {
    version_param(slot.generation)
}

pub(super) fn slot_of(
    name: &str,
    version: u32,
    row: &PgRow,
) -> Result<(Slot, Checkpoint), StoreError> {
    let generation: i32 = row.try_get(0).map_err(backend)?;
    let checkpoint = checkpoint_at(name, row, 1)?;
    let generation = u32::try_from(generation).map_err(|_| {
        StoreError::backend(std::io::Error::other(format!(
            "projection `{name}` has a negative generation {generation}"
        )))
    })?;
    let inline: bool = row.try_get(3).map_err(backend)?;
    let live: bool = row.try_get(4).map_err(backend)?;
    let slot = Slot {
        name: name.to_owned(),
        version,
        generation,
        inline,
        live,
        shard: Shard::WHOLE,
    };
    Ok((slot, checkpoint))
}

/// `sql` (a slot's documents under keys `$4`) on `conn`.
async fn documents_on(
    sql: &str,
    conn: &mut sqlx::PgConnection,
    slot: &Slot,
    keys: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    sqlx::query_as(sql)
        .bind(&slot.name)
        .bind(version_param(slot.version)?)
        .bind(generation_param(slot)?)
        .bind(keys)
        .fetch_all(conn)
        .await
        .map_err(backend)
}
