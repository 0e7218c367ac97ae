//! The PostgreSQL store's dead letters: references to the events a projection set aside,
//! with the later events of their documents parked behind them, and what was done with them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::PostgresStore;
use super::projection_sql::{backend, generation_param, split, version_param};
use crate::event::Checkpoint;
use crate::projection::{DeadLetter, DeadLetterAction, Slot};
use crate::store::StoreError;
use crate::store::sql::convert::{checkpoint_at, checkpoint_params};

/// A counter this store wrote, read back: negative is corrupt.
fn count(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| {
        StoreError::backend(std::io::Error::other(format!(
            "a dead letter holds the negative count {value}"
        )))
    })
}

fn letter_of(slot: &Slot, row: &sqlx::postgres::PgRow) -> Result<DeadLetter, StoreError> {
    let get_i64 = |i: usize| row.try_get::<i64, _>(i).map_err(backend);
    let get_i32 = |i: usize| row.try_get::<i32, _>(i).map_err(backend);
    let behind: Option<i64> = row.try_get(11).map_err(backend)?;
    Ok(DeadLetter {
        projection: slot.name.clone(),
        version: slot.version,
        checkpoint: checkpoint_at(&slot.name, row, 0)?,
        stream: row.try_get(2).map_err(backend)?,
        stream_version: count(get_i64(3)?)?,
        event: row.try_get(4).map_err(backend)?,
        event_version: u32::try_from(get_i32(5)?).map_err(StoreError::backend)?,
        key: row.try_get(6).map_err(backend)?,
        error: row.try_get(7).map_err(backend)?,
        attempts: u32::try_from(get_i32(8)?).map_err(StoreError::backend)?,
        first_failed_at: row.try_get(9).map_err(backend)?,
        last_failed_at: row.try_get(10).map_err(backend)?,
        behind: behind.map(count).transpose()?,
    })
}

impl PostgresStore {
    pub(super) async fn list_letters(&self, slot: &Slot) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(&self.projections.dead_letters)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .fetch_all(&self.projector)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| letter_of(slot, row)).collect()
    }

    pub(super) async fn letter_actions(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<DeadLetterAction>, StoreError> {
        let rows: Vec<(String, String, i64, DateTime<Utc>)> =
            sqlx::query_as(&self.projections.actions)
                .bind(name)
                .bind(version_param(version)?)
                .fetch_all(&self.projector)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(action, key, events, at)| {
                Ok(DeadLetterAction {
                    action,
                    key,
                    events: count(events)?,
                    at,
                })
            })
            .collect()
    }

    pub(super) async fn park_letters(
        &self,
        slot: &Slot,
        letters: &[DeadLetter],
    ) -> Result<(), StoreError> {
        let columns = |f: &dyn Fn(&DeadLetter) -> i64| letters.iter().map(f).collect::<Vec<_>>();
        let texts = |f: &dyn Fn(&DeadLetter) -> String| letters.iter().map(f).collect::<Vec<_>>();
        let (transactions, positions): (Vec<i64>, Vec<i64>) = letters
            .iter()
            .map(|l| checkpoint_params(l.checkpoint))
            .unzip();
        let int = |value: u32| i32::try_from(value).map_err(StoreError::backend);
        let event_versions = letters
            .iter()
            .map(|l| int(l.event_version))
            .collect::<Result<Vec<i32>, _>>()?;
        let attempts = letters
            .iter()
            .map(|l| int(l.attempts))
            .collect::<Result<Vec<i32>, _>>()?;
        let behind: Vec<Option<i64>> = letters
            .iter()
            .map(|l| l.behind.map(crate::store::sql::bound))
            .collect();
        let first: Vec<DateTime<Utc>> = letters.iter().map(|l| l.first_failed_at).collect();
        let last: Vec<DateTime<Utc>> = letters.iter().map(|l| l.last_failed_at).collect();
        sqlx::query(&self.projections.park)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(&transactions)
            .bind(&positions)
            .bind(texts(&|l| l.stream.clone()))
            .bind(columns(&|l| crate::store::sql::bound(l.stream_version)))
            .bind(texts(&|l| l.event.clone()))
            .bind(&event_versions)
            .bind(texts(&|l| l.key.clone()))
            .bind(texts(&|l| l.error.clone()))
            .bind(&attempts)
            .bind(&first)
            .bind(&last)
            .bind(&behind)
            .execute(&self.projector)
            .await
            .map_err(backend)?;
        Ok(())
    }

    pub(super) async fn settle_letters(
        &self,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        document: Option<Option<String>>,
        action: &str,
    ) -> Result<u64, StoreError> {
        let sql = &self.projections;
        let mut tx = self.projector.begin().await.map_err(backend)?;
        let removed = self.settle_in(&mut tx, slot, key, letters, action).await?;
        if removed == 0 {
            return Ok(0);
        }
        if let Some(document) = document {
            // The key is parked, so no runner writes its document meanwhile.
            let (keys, bodies, deleted) = split(vec![(key.to_owned(), document)]);
            sqlx::query(&sql.commit_documents_only)
                .bind(&slot.name)
                .bind(version_param(slot.version)?)
                .bind(generation_param(slot)?)
                .bind(&deleted)
                .bind(&keys)
                .bind(&bodies)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(removed)
    }

    /// Removes the dead letters of `key` at `letters` and records `action`, inside `tx`:
    /// all of them, or none (0, and the caller rolls back) when some were settled
    /// meanwhile.
    pub(super) async fn settle_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        action: &str,
    ) -> Result<u64, StoreError> {
        let sql = &self.projections;
        let (transactions, positions): (Vec<i64>, Vec<i64>) =
            letters.iter().map(|at| checkpoint_params(*at)).unzip();
        let removed = sqlx::query(&sql.settle)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(generation_param(slot)?)
            .bind(key)
            .bind(&transactions)
            .bind(&positions)
            .execute(&mut **tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if removed != letters.len() as u64 || removed == 0 {
            // Some were settled by another call meanwhile: this one changes nothing.
            return Ok(0);
        }
        sqlx::query(&sql.record_action)
            .bind(&slot.name)
            .bind(version_param(slot.version)?)
            .bind(action)
            .bind(key)
            .bind(crate::store::sql::bound(removed))
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        Ok(removed)
    }
}
