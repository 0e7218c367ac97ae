//! Sharded projections on PostgreSQL: each part of a projection's keys has a checkpoint
//! of its own (`annals_projection_shards`), committed with its documents in one statement,
//! while the generation readers see stays in `annals_projections`.

use sqlx::Row;

use super::PostgresStore;
use super::projection_sql::{backend, generation_param, slot_of, split, version_param};
use crate::event::Checkpoint;
use crate::projection::{Changes, Shard, Slot};
use crate::store::StoreError;
use crate::store::sql::convert::{checkpoint_at, checkpoint_params};

/// A shard number as PostgreSQL stores it.
fn shard_param(value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(StoreError::backend)
}

impl PostgresStore {
    pub(super) async fn open_part(
        &self,
        slot: &Slot,
        shard: Shard,
    ) -> Result<(Slot, Checkpoint), StoreError> {
        let sql = &self.projections.shards;
        let (v, g) = (version_param(slot.version)?, generation_param(slot)?);
        sqlx::query(&sql.open)
            .bind(&slot.name)
            .bind(v)
            .bind(g)
            .bind(shard_param(shard.count)?)
            .execute(&self.projector)
            .await
            .map_err(backend)?;
        let part = Slot {
            shard,
            ..slot.clone()
        };
        let checkpoint = self.part_checkpoint(&part).await?.ok_or_else(|| {
            StoreError::backend(std::io::Error::other(format!(
                "projection `{}` v{}: part {} of {} vanished",
                slot.name, slot.version, shard.index, shard.count
            )))
        })?;
        Ok((part, checkpoint))
    }

    pub(super) async fn part_checkpoint(
        &self,
        slot: &Slot,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(&self.projections.shards.checkpoint)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(shard_param(slot.shard.index)?)
            .fetch_optional(&self.projector)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: i32 = row.try_get(2).map_err(backend)?;
        if i64::from(stored) != i64::from(slot.shard.count) {
            // Keys hashed into another number of parts live elsewhere: applying them here
            // would put a document in two parts.
            return Err(StoreError::backend(std::io::Error::other(format!(
                "projection `{}` v{} is stored in {stored} shards, and declared with {}: \
                 changing the number of shards needs a new version",
                slot.name, slot.version, slot.shard.count
            ))));
        }
        checkpoint_at(&slot.name, &row, 0).map(Some)
    }

    pub(super) async fn commit_part(
        &self,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
        changes: Changes,
    ) -> Result<bool, StoreError> {
        let (keys, bodies, deleted) = split(changes);
        let (from_tx, from_pos) = checkpoint_params(from);
        let (to_tx, to_pos) = checkpoint_params(to);
        let moved: i64 = sqlx::query_scalar(&self.projections.shards.commit)
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
            .bind(shard_param(slot.shard.index)?)
            .fetch_one(&self.projector)
            .await
            .map_err(backend)?;
        Ok(moved == 1)
    }

    pub(super) async fn rebuilding_slot(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<Slot>, StoreError> {
        let row = sqlx::query(&self.projections.rebuilding)
            .bind(name)
            .bind(version_param(version)?)
            .fetch_optional(&self.projector)
            .await
            .map_err(backend)?;
        row.map(|row| slot_of(name, version, &row).map(|(slot, _)| slot))
            .transpose()
    }

    pub(super) async fn part_states(&self, slot: &Slot) -> Result<Vec<(u32, bool)>, StoreError> {
        let rows = sqlx::query(&self.projections.shards.parts)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .fetch_all(&self.projector)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let shard: i32 = row.try_get(0).map_err(backend)?;
                let caught_up: bool = row.try_get(3).map_err(backend)?;
                Ok((
                    u32::try_from(shard).map_err(StoreError::backend)?,
                    caught_up,
                ))
            })
            .collect()
    }

    pub(super) async fn part_caught_up(&self, slot: &Slot) -> Result<(), StoreError> {
        sqlx::query(&self.projections.shards.caught_up)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(shard_param(slot.shard.index)?)
            .execute(&self.projector)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Makes `slot`'s generation the one readers see, in one transaction, if every part
    /// of it has caught up with the log once and none is behind the same part of the
    /// generation it replaces (whose parts it locks, so none commits past meanwhile).
    pub(super) async fn promote_parts(&self, slot: &Slot) -> Result<bool, StoreError> {
        let sql = &self.projections;
        let v = version_param(slot.version)?;
        let generation = generation_param(slot)?;
        let mut tx = self.projector.begin().await.map_err(backend)?;
        let live: Option<i32> = sqlx::query(&sql.lock_live)
            .bind(&slot.name)
            .bind(v)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(backend)?;
        let parts = |g: i32| {
            let statement = if g == generation {
                &sql.shards.parts
            } else {
                &sql.shards.lock
            };
            sqlx::query(statement).bind(&slot.name).bind(v).bind(g)
        };
        let mut behind = Vec::new();
        if let Some(live) = live.filter(|&g| g != generation) {
            for row in parts(live).fetch_all(&mut *tx).await.map_err(backend)? {
                let shard: i32 = row.try_get(0).map_err(backend)?;
                behind.push((shard, checkpoint_at(&slot.name, &row, 1)?));
            }
        }
        let rebuilt = parts(generation)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let mut ready = rebuilt.len() == slot.shard.count as usize;
        for row in &rebuilt {
            let shard: i32 = row.try_get(0).map_err(backend)?;
            let caught_up: bool = row.try_get(3).map_err(backend)?;
            let at = checkpoint_at(&slot.name, row, 1)?;
            let passed = behind
                .iter()
                .any(|&(other, live)| other == shard && live > at);
            ready &= caught_up && !passed;
        }
        if !ready {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        self.make_live(&mut tx, slot).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }
}
