//! The SQLite store's dead letters: references to the events a projection set aside,
//! with the later events of their documents parked behind them, and what was done with them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::SqliteStore;
use super::dialect::micros;
use super::projections::{backend, now, split, write_documents};
use crate::event::Checkpoint;
use crate::projection::{DeadLetter, DeadLetterAction, Slot};
use crate::store::StoreError;
use crate::store::sql::convert::{bound, checkpoint_at, checkpoint_params};

const PARK: &str = "INSERT INTO annals_dead_letters (name, version, generation, transaction_id, \
     position, stream_id, stream_version, event_name, event_version, key, error, attempts, \
     first_failed_at, last_failed_at, behind) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT DO NOTHING";
const DEAD_LETTERS: &str = "SELECT transaction_id, position, stream_id, stream_version, \
     event_name, event_version, key, error, attempts, first_failed_at, last_failed_at, behind \
     FROM annals_dead_letters WHERE name = ?1 AND version = ?2 AND generation = ?3 \
     ORDER BY transaction_id, position";
const SETTLE: &str = "DELETE FROM annals_dead_letters WHERE name = ?1 AND version = ?2 \
     AND generation = ?3 AND transaction_id = ?4 AND position = ?5 AND key = ?6";
const RECORD_ACTION: &str = "INSERT INTO annals_dead_letter_actions (name, version, action, key, \
     events, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const ACTIONS: &str = "SELECT action, key, events, at FROM annals_dead_letter_actions \
     WHERE name = ?1 AND version = ?2 ORDER BY rowid";

/// A time this store wrote, read back.
fn time_of(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        StoreError::backend(std::io::Error::other(format!(
            "{micros} µs since 1970 is out of range"
        )))
    })
}

/// A counter this store wrote, read back: negative is corrupt.
fn count(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| {
        StoreError::backend(std::io::Error::other(format!(
            "a dead letter holds the negative count {value}"
        )))
    })
}

fn letter_of(slot: &Slot, row: &sqlx::sqlite::SqliteRow) -> Result<DeadLetter, StoreError> {
    let get_i64 = |i: usize| row.try_get::<i64, _>(i).map_err(backend);
    let behind: Option<i64> = row.try_get(11).map_err(backend)?;
    Ok(DeadLetter {
        projection: slot.name.clone(),
        version: slot.version,
        checkpoint: checkpoint_at(&slot.name, row, 0)?,
        stream: row.try_get(2).map_err(backend)?,
        stream_version: count(get_i64(3)?)?,
        event: row.try_get(4).map_err(backend)?,
        event_version: u32::try_from(get_i64(5)?).map_err(StoreError::backend)?,
        key: row.try_get(6).map_err(backend)?,
        error: row.try_get(7).map_err(backend)?,
        attempts: u32::try_from(get_i64(8)?).map_err(StoreError::backend)?,
        first_failed_at: time_of(get_i64(9)?)?,
        last_failed_at: time_of(get_i64(10)?)?,
        behind: behind.map(count).transpose()?,
    })
}

impl SqliteStore {
    pub(super) async fn list_letters(&self, slot: &Slot) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(DEAD_LETTERS)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| letter_of(slot, row)).collect()
    }

    pub(super) async fn letter_actions(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<DeadLetterAction>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(ACTIONS)
            .bind(name)
            .bind(version)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|(action, key, events, at)| {
                Ok(DeadLetterAction {
                    action,
                    key,
                    events: count(events)?,
                    at: time_of(at)?,
                })
            })
            .collect()
    }

    pub(super) async fn park_letters(
        &self,
        slot: &Slot,
        letters: &[DeadLetter],
    ) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for letter in letters {
            let (transaction_id, position) = checkpoint_params(letter.checkpoint);
            sqlx::query(PARK)
                .bind(&slot.name)
                .bind(slot.version)
                .bind(slot.generation)
                .bind(transaction_id)
                .bind(position)
                .bind(&letter.stream)
                .bind(bound(letter.stream_version))
                .bind(&letter.event)
                .bind(letter.event_version)
                .bind(&letter.key)
                .bind(&letter.error)
                .bind(letter.attempts)
                .bind(micros(letter.first_failed_at))
                .bind(micros(letter.last_failed_at))
                .bind(letter.behind.map(bound))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    pub(super) async fn settle_letters(
        &self,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        document: Option<Option<String>>,
        action: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let removed = settle_in(&mut tx, slot, key, letters, action).await?;
        if removed == 0 {
            return Ok(0);
        }
        if let Some(document) = document {
            let (stored, deleted) = split(vec![(key.to_owned(), document)]);
            write_documents(&mut tx, slot, &stored, &deleted).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(removed)
    }
}

/// Removes the dead letters of `key` at `letters` and records `action`, inside `tx`: all
/// of them, or none (0, and the caller rolls back) when some were settled meanwhile.
pub(super) async fn settle_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    slot: &Slot,
    key: &str,
    letters: &[Checkpoint],
    action: &str,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for at in letters {
        let (transaction_id, position) = checkpoint_params(*at);
        removed += sqlx::query(SETTLE)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(transaction_id)
            .bind(position)
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(backend)?
            .rows_affected();
    }
    if removed != letters.len() as u64 || removed == 0 {
        // Some were settled by another call meanwhile: this one changes nothing.
        return Ok(0);
    }
    sqlx::query(RECORD_ACTION)
        .bind(&slot.name)
        .bind(slot.version)
        .bind(action)
        .bind(key)
        .bind(bound(removed))
        .bind(now())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(removed)
}
