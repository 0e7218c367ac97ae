//! The PostgreSQL store's projections: checkpoints and `jsonb` documents in the store's
//! schema; a batch's documents and its checkpoint in one statement, so one round trip.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row};

use super::PostgresStore;
use super::projection_sql::{backend, generation_param, slot_of, split, version_param};
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::projection::{
    Changes, DeadLetter, DeadLetterAction, DocumentProjection, Horizon, Lease, LogAfter, Presence,
    ProjectionState, ProjectionStore, Scanned, Shard, Slot,
};
use crate::store::StoreError;
use crate::store::sql::convert::{checkpoint_at, checkpoint_params, limit, stored_checkpoint};
use crate::store::sql::fold_global;

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
        for statement in [
            &sql.drop_other_documents,
            &sql.drop_other_letters,
            &sql.shards.drop_others,
            &sql.drop_other_generations,
        ] {
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
            live: false,
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
        if slot.shard.is_part() {
            return self.promote_parts(slot).await;
        }
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
            .map(|row| checkpoint_at(&slot.name, &row, 0))
            .transpose()?;
        if rebuilt != Some(at) || live.is_some_and(|(_, live)| live > at) {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        self.make_live(&mut tx, slot).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn projection_versions(&self, name: &str) -> Result<Vec<(u32, bool)>, StoreError> {
        let rows: Vec<(i32, bool)> = sqlx::query_as(&self.projections.versions)
            .bind(name)
            .fetch_all(&self.projector)
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|(version, live)| {
                let version = u32::try_from(version).map_err(StoreError::backend)?;
                Ok((version, live))
            })
            .collect()
    }

    async fn drop_projection(&self, name: &str, version: u32) -> Result<bool, StoreError> {
        let sql = &self.projections;
        let mut tx = self.projector.begin().await.map_err(backend)?;
        let mut dropped = 0;
        for statement in [
            &sql.drop_documents,
            &sql.drop_letters,
            &sql.shards.drop_all,
            &sql.drop_projection,
        ] {
            dropped += sqlx::query(statement)
                .bind(name)
                .bind(version_param(version)?)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(dropped > 0)
    }

    async fn park(&self, slot: &Slot, letters: &[DeadLetter]) -> Result<(), StoreError> {
        self.park_letters(slot, letters).await
    }

    async fn dead_letters(&self, slot: &Slot) -> Result<Vec<DeadLetter>, StoreError> {
        self.list_letters(slot).await
    }

    async fn settle_dead_letters(
        &self,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        document: Option<Option<String>>,
        action: &str,
    ) -> Result<u64, StoreError> {
        self.settle_letters(slot, key, letters, document, action)
            .await
    }

    async fn dead_letter_actions(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<DeadLetterAction>, StoreError> {
        self.letter_actions(name, version).await
    }

    async fn read_event(&self, at: Checkpoint) -> Result<Option<RecordedEvent>, StoreError> {
        let (transaction_id, position) = checkpoint_params(at);
        let rows = sqlx::query(&self.sql.read_at)
            .bind(transaction_id)
            .bind(position)
            .fetch_all(&self.own)
            .await
            .map_err(backend)?;
        Ok(crate::store::sql::records_until_unreadable::<Postgres>(&rows)?.pop())
    }

    async fn projection_checkpoint(&self, slot: &Slot) -> Result<Option<Checkpoint>, StoreError> {
        if slot.shard.is_part() {
            return self.part_checkpoint(slot).await;
        }
        let row = sqlx::query(&self.projections.checkpoint)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .fetch_optional(&self.projector)
            .await
            .map_err(backend)?;
        row.map(|row| checkpoint_at(&slot.name, &row, 0))
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
        if slot.shard.is_part() {
            return self.commit_part(slot, from, to, changes).await;
        }
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
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        sqlx::query_as(&self.projections.read_live)
            .bind(name)
            .bind(version_param(version)?)
            .bind(&keys)
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
        let (mut slot, at) = self.open_projection(P::NAME, P::VERSION).await?;
        if !slot.live {
            // Inline, a new version serves at once: it applies what is appended from now,
            // and replays nothing (as any projection made inline).
            self.promote(&slot, at).await?;
            slot.live = true;
        }
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

    async fn record_failure(
        &self,
        slot: &Slot,
        failure: Option<&str>,
        stopped: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.projections.record_failure)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(failure)
            .bind(stopped && failure.is_some())
            .execute(&self.projector)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn projection_state(
        &self,
        name: &str,
        version: u32,
    ) -> Result<ProjectionState, StoreError> {
        let (building, failure, stopped, moved_at): (
            bool,
            Option<String>,
            bool,
            Option<DateTime<Utc>>,
        ) = sqlx::query_as(&self.projections.state)
            .bind(name)
            .bind(version_param(version)?)
            .fetch_one(&self.projector)
            .await
            .map_err(backend)?;
        Ok(ProjectionState {
            building,
            failure,
            stopped,
            moved_at,
        })
    }

    async fn lease(
        &self,
        name: &str,
        version: u32,
        shard: Shard,
    ) -> Result<Option<Lease>, StoreError> {
        let key = if shard.is_part() {
            format!(
                "annals.projection.{}.{name}.{version}.{}/{}",
                self.schema(),
                shard.index,
                shard.count
            )
        } else {
            format!("annals.projection.{}.{name}.{version}", self.schema())
        };
        self.advisory_lease(&key).await
    }

    async fn presence(&self, name: &str, version: u32) -> Result<Presence, StoreError> {
        self.present(name, version).await
    }

    async fn rebuilding(&self, name: &str, version: u32) -> Result<Option<Slot>, StoreError> {
        self.rebuilding_slot(name, version).await
    }

    async fn shard_states(&self, slot: &Slot) -> Result<Vec<(u32, bool)>, StoreError> {
        self.part_states(slot).await
    }

    async fn rebuild_leases(
        &self,
        slot: &Slot,
        parts: &[Shard],
        max: usize,
    ) -> Result<(Vec<Shard>, Lease), StoreError> {
        self.part_leases(slot, parts, max).await
    }

    fn keeps_shards(&self) -> bool {
        true
    }

    async fn open_shard(
        &self,
        slot: &Slot,
        shard: Shard,
    ) -> Result<(Slot, Checkpoint), StoreError> {
        self.open_part(slot, shard).await
    }

    async fn shard_caught_up(&self, slot: &Slot) -> Result<(), StoreError> {
        if slot.shard.is_part() {
            self.part_caught_up(slot).await?;
        }
        Ok(())
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

impl PostgresStore {
    /// Makes `slot`'s generation the one readers see, inside `tx`, and drops the others
    /// whole: documents, dead letters, parts and rows.
    pub(super) async fn make_live(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        slot: &Slot,
    ) -> Result<(), StoreError> {
        let sql = &self.projections;
        let v = version_param(slot.version)?;
        sqlx::query(&sql.unset_live)
            .bind(&slot.name)
            .bind(v)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        for statement in [
            &sql.set_live,
            &sql.drop_other_documents,
            &sql.drop_other_letters,
            &sql.shards.drop_others,
            &sql.drop_other_generations,
        ] {
            sqlx::query(statement)
                .bind(&slot.name)
                .bind(v)
                .bind(generation_param(slot)?)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }
}
