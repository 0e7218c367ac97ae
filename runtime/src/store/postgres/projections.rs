//! The PostgreSQL store's projections: checkpoints and `jsonb` documents in the store's
//! schema; a batch's documents and its checkpoint in one statement, so one round trip.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

use super::PostgresStore;
use crate::event::{Checkpoint, StoredEvent};
use crate::projection::{
    Changes, DocumentProjection, Horizon, LogAfter, ProjectionStore, Scanned, Slot,
};
use crate::store::StoreError;
use crate::store::sql::convert::{checkpoint_params, limit, stored_checkpoint};
use crate::store::sql::fold_global;

/// The projection SQL of one store, its schema spliced in once (a validated identifier).
#[derive(Debug)]
pub(super) struct Sql {
    live: String,
    mark_inline: String,
    start: String,
    checkpoint: String,
    load: String,
    lock: String,
    commit: String,
    advance: String,
    write: String,
    lock_live: String,
    drop_other_documents: String,
    drop_other_generations: String,
    new_generation: String,
    unset_live: String,
    set_live: String,
    read_live: String,
    list_live: String,
    log_after: String,
    head: String,
    fold_named: String,
    horizon: String,
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let p = format!("\"{schema}\".annals_projections");
        let d = format!("\"{schema}\".annals_documents");
        let e = format!("\"{schema}\".annals_events");
        let live_join = format!(
            "FROM {d} d JOIN {p} p ON p.name = d.name AND p.version = d.version \
             AND p.generation = d.generation AND p.live"
        );
        Self {
            live: format!(
                "SELECT generation, transaction_id, position, inline FROM {p} \
                 WHERE name = $1 AND version = $2 AND live"
            ),
            mark_inline: format!(
                "UPDATE {p} SET inline = true WHERE name = $1 AND version = $2 AND live"
            ),
            start: format!(
                "INSERT INTO {p} (name, version, generation) VALUES ($1, $2, 1) ON CONFLICT DO NOTHING"
            ),
            checkpoint: format!(
                "SELECT transaction_id, position FROM {p} WHERE name = $1 AND version = $2 AND generation = $3"
            ),
            load: format!(
                "SELECT key, body::text FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                 AND key = ANY($4) ORDER BY key"
            ),
            // An inline projection's documents, locked until the append commits, in key
            // order (two appends that share documents lock them in one order): a
            // concurrent append changing one waits, then reads what this one wrote.
            lock: format!(
                "SELECT key, body::text FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                 AND key = ANY($4) ORDER BY key FOR UPDATE"
            ),
            // The checkpoint moves only from where the batch started; the documents change
            // only if it did. A second runner's update waits for the first to commit, then
            // finds the checkpoint moved and changes nothing.
            commit: format!(
                "WITH moved AS (UPDATE {p} SET transaction_id = $4, position = $5, updated_at = now() \
                   WHERE name = $1 AND version = $2 AND generation = $3 \
                     AND transaction_id = $6 AND position = $7 RETURNING 1), \
                 gone AS (DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND key = ANY($8) AND EXISTS (SELECT 1 FROM moved)), \
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
            // those it locked are updated; new ones are inserted only if still absent, and
            // the count tells the caller whether another append created one meanwhile.
            write: format!(
                "WITH gone AS (DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation = $3 \
                   AND key = ANY($4)), \
                 changed AS (UPDATE {d} AS d SET body = u.body::jsonb \
                   FROM UNNEST($5::text[], $6::text[]) AS u(key, body) \
                   WHERE d.name = $1 AND d.version = $2 AND d.generation = $3 AND d.key = u.key), \
                 added AS (INSERT INTO {d} (name, version, generation, key, body) \
                   SELECT $1, $2, $3, u.key, u.body::jsonb FROM UNNEST($7::text[], $8::text[]) AS u(key, body) \
                   ON CONFLICT (name, version, generation, key) DO NOTHING RETURNING 1) \
                 SELECT count(*) FROM added"
            ),
            lock_live: format!(
                "SELECT generation, transaction_id, position, inline FROM {p} \
                 WHERE name = $1 AND version = $2 AND live FOR UPDATE"
            ),
            drop_other_documents: format!(
                "DELETE FROM {d} WHERE name = $1 AND version = $2 AND generation <> $3"
            ),
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
                "SELECT d.key, d.body::text {live_join} WHERE d.name = $1 AND d.version = $2 \
                 AND d.key = ANY($3) ORDER BY d.key"
            ),
            list_live: format!(
                "SELECT d.key, d.body::text {live_join} WHERE d.name = $1 AND d.version = $2 \
                 AND ($3::text IS NULL OR d.key > $3) ORDER BY d.key LIMIT $4"
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
        }
    }
}

impl Sql {
    /// The slot's documents under `keys`, on `conn`, locked until its transaction ends.
    pub(super) async fn lock_on(
        &self,
        conn: &mut sqlx::PgConnection,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(&self.lock)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(keys)
            .fetch_all(conn)
            .await
            .map_err(backend)
    }

    /// The slot's documents under `keys`, on `conn`.
    pub(super) async fn load_on(
        &self,
        conn: &mut sqlx::PgConnection,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(&self.load)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(keys)
            .fetch_all(conn)
            .await
            .map_err(backend)
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
fn split(changes: Changes) -> (Vec<String>, Vec<String>, Vec<String>) {
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

fn backend(error: sqlx::Error) -> StoreError {
    StoreError::backend(error)
}

fn version_param(version: u32) -> Result<i32, StoreError> {
    i32::try_from(version).map_err(|_| {
        StoreError::backend(std::io::Error::other(format!(
            "projection version {version} is beyond the column's {}",
            i32::MAX
        )))
    })
}

fn generation_param(slot: &Slot) -> Result<i32, StoreError> {
    version_param(slot.generation)
}

fn slot_of(name: &str, version: u32, row: &PgRow) -> Result<(Slot, Checkpoint), StoreError> {
    let generation: i32 = row.try_get(0).map_err(backend)?;
    let checkpoint = stored_checkpoint(
        name,
        row.try_get(1).map_err(backend)?,
        row.try_get(2).map_err(backend)?,
    )?;
    let generation = u32::try_from(generation).map_err(|_| {
        StoreError::backend(std::io::Error::other(format!(
            "projection `{name}` has a negative generation {generation}"
        )))
    })?;
    let inline: bool = row.try_get(3).map_err(backend)?;
    let slot = Slot {
        name: name.to_owned(),
        version,
        generation,
        inline,
    };
    Ok((slot, checkpoint))
}

impl ProjectionStore for PostgresStore {
    async fn open_projection(
        &self,
        name: &str,
        version: u32,
    ) -> Result<(Slot, Checkpoint), StoreError> {
        let sql = &self.projections;
        let v = version_param(version)?;
        let found = sqlx::query(&sql.live)
            .bind(name)
            .bind(v)
            .fetch_optional(&self.projector)
            .await
            .map_err(backend)?;
        if let Some(row) = found {
            return slot_of(name, version, &row);
        }
        sqlx::query(&sql.start)
            .bind(name)
            .bind(v)
            .execute(&self.projector)
            .await
            .map_err(backend)?;
        let row = sqlx::query(&sql.live)
            .bind(name)
            .bind(v)
            .fetch_one(&self.projector)
            .await
            .map_err(backend)?;
        slot_of(name, version, &row)
    }

    async fn begin_rebuild(&self, name: &str, version: u32) -> Result<Slot, StoreError> {
        let (live, _) = self.open_projection(name, version).await?;
        let sql = &self.projections;
        let v = version_param(version)?;
        let generation = generation_param(&live)?;
        let mut tx = self.projector.begin().await.map_err(backend)?;
        for statement in [&sql.drop_other_documents, &sql.drop_other_generations] {
            sqlx::query(statement)
                .bind(name)
                .bind(v)
                .bind(generation)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let rebuilt = Slot {
            generation: live.generation + 1,
            ..live
        };
        sqlx::query(&sql.new_generation)
            .bind(name)
            .bind(v)
            .bind(generation_param(&rebuilt)?)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(rebuilt)
    }

    async fn promote(&self, slot: &Slot, at: Checkpoint) -> Result<bool, StoreError> {
        let sql = &self.projections;
        let v = version_param(slot.version)?;
        let mut tx = self.projector.begin().await.map_err(backend)?;
        // Locks the live row: a runner of the old generation commits before or not at all.
        let live = sqlx::query(&sql.lock_live)
            .bind(&slot.name)
            .bind(v)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .map(|row| slot_of(&slot.name, slot.version, &row))
            .transpose()?;
        let rebuilt = sqlx::query(&sql.checkpoint)
            .bind(&slot.name)
            .bind(v)
            .bind(generation_param(slot)?)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .map(|row| {
                stored_checkpoint(
                    &slot.name,
                    row.try_get(0).map_err(backend)?,
                    row.try_get(1).map_err(backend)?,
                )
            })
            .transpose()?;
        if rebuilt != Some(at) || live.is_some_and(|(_, live)| live > at) {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        sqlx::query(&sql.unset_live)
            .bind(&slot.name)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for statement in [
            &sql.set_live,
            &sql.drop_other_documents,
            &sql.drop_other_generations,
        ] {
            sqlx::query(statement)
                .bind(&slot.name)
                .bind(v)
                .bind(generation_param(slot)?)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn projection_checkpoint(&self, slot: &Slot) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(&self.projections.checkpoint)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .fetch_optional(&self.projector)
            .await
            .map_err(backend)?;
        row.map(|row| {
            stored_checkpoint(
                &slot.name,
                row.try_get(0).map_err(backend)?,
                row.try_get(1).map_err(backend)?,
            )
        })
        .transpose()
    }

    async fn load_documents(
        &self,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.projector.acquire().await.map_err(backend)?;
        self.projections.load_on(&mut conn, slot, keys).await
    }

    async fn commit_documents(
        &self,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
        changes: Changes,
    ) -> Result<bool, StoreError> {
        let (keys, bodies, deleted) = split(changes);
        let (from_tx, from_pos) = checkpoint_params(from);
        let (to_tx, to_pos) = checkpoint_params(to);
        let moved: i64 = sqlx::query_scalar(&self.projections.commit)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(to_tx)
            .bind(to_pos)
            .bind(from_tx)
            .bind(from_pos)
            .bind(&deleted)
            .bind(&keys)
            .bind(&bodies)
            .fetch_one(&self.projector)
            .await
            .map_err(backend)?;
        Ok(moved == 1)
    }

    async fn read_documents(
        &self,
        name: &str,
        version: u32,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(&self.projections.read_live)
            .bind(name)
            .bind(version_param(version)?)
            .bind(keys)
            .fetch_all(&self.projector)
            .await
            .map_err(backend)
    }

    async fn list_documents(
        &self,
        name: &str,
        version: u32,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(&self.projections.list_live)
            .bind(name)
            .bind(version_param(version)?)
            .bind(after)
            .bind(limit(max))
            .fetch_all(&self.projector)
            .await
            .map_err(backend)
    }

    async fn inline<P: DocumentProjection>(mut self) -> Result<Self, StoreError> {
        let (mut slot, _) = self.open_projection(P::NAME, P::VERSION).await?;
        sqlx::query(&self.projections.mark_inline)
            .bind(P::NAME)
            .bind(version_param(P::VERSION)?)
            .execute(&self.projector)
            .await
            .map_err(backend)?;
        slot.inline = true;
        self.inline = self.inline.with::<P>(slot);
        Ok(self)
    }

    fn inline_projections(&self) -> Vec<(&'static str, u32)> {
        self.inline.names()
    }

    async fn fold_named<F, E>(
        &self,
        after: Checkpoint,
        max: usize,
        names: &[&str],
        mut f: F,
    ) -> Result<Scanned, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        let sql = &self.projections;
        let mut conn = self.projector.acquire().await.map_err(backend)?;
        // The head first: everything up to it has committed, for good, so the filtered
        // read up to it sees all there will ever be, and a checkpoint there skips nothing.
        let head: Option<(i64, i64)> = sqlx::query_as(&sql.head)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        let Some((head_tx, head_pos)) = head else {
            return Ok(Scanned {
                delivered: 0,
                reached: after,
            });
        };
        let head = stored_checkpoint("log", head_tx, head_pos)?;
        if head <= after {
            return Ok(Scanned {
                delivered: 0,
                reached: after,
            });
        }
        let (after_tx, after_pos) = checkpoint_params(after);
        let mut last = after;
        let rows = sqlx::query(&sql.fold_named)
            .bind(after_tx)
            .bind(after_pos)
            .bind(head_tx)
            .bind(head_pos)
            .bind(limit(max))
            .bind(names)
            .fetch(&mut *conn);
        let delivered = fold_global::<Postgres, _, _>(rows, |checkpoint, event| {
            last = checkpoint;
            f(checkpoint, event)
        })
        .await?;
        Ok(Scanned {
            delivered,
            reached: if delivered == max { last } else { head },
        })
    }

    async fn horizon(&self) -> Result<Option<Horizon>, StoreError> {
        let row: (Option<i32>, Option<String>, Option<f64>, i64) =
            sqlx::query_as(&self.projections.horizon)
                .fetch_one(&self.projector)
                .await
                .map_err(backend)?;
        let (pid, application, seconds, waiting) = row;
        if waiting == 0 {
            return Ok(None);
        }
        Ok(Some(Horizon {
            pid,
            application,
            running_for: std::time::Duration::try_from_secs_f64(seconds.unwrap_or(0.0))
                .unwrap_or_default(),
            events_waiting: u64::try_from(waiting).unwrap_or(0),
        }))
    }

    async fn log_after(&self, after: Checkpoint) -> Result<LogAfter, StoreError> {
        let (tx, pos) = checkpoint_params(after);
        let row = sqlx::query(&self.projections.log_after)
            .bind(tx)
            .bind(pos)
            .fetch_one(&self.projector)
            .await
            .map_err(backend)?;
        let head_tx: Option<i64> = row.try_get(0).map_err(backend)?;
        let head_pos: Option<i64> = row.try_get(1).map_err(backend)?;
        let events: i64 = row.try_get(2).map_err(backend)?;
        let first: Option<DateTime<Utc>> = row.try_get(3).map_err(backend)?;
        let head = match (head_tx, head_pos) {
            (Some(t), Some(p)) => stored_checkpoint("log", t, p)?,
            _ => Checkpoint::START,
        };
        Ok(LogAfter {
            head,
            events: u64::try_from(events).unwrap_or(0),
            first_recorded_at: first,
        })
    }
}
