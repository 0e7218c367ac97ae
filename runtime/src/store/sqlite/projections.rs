//! The SQLite store's projections: checkpoints and documents in the database file, each
//! batch committed with its checkpoint in one write transaction.

use chrono::{DateTime, Utc};
use sqlx::Row;

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::dialect::micros;
use super::projection_sql::*;
use super::statements::READ_AT;
use crate::event::{Checkpoint, RecordedEvent};
use crate::projection::{
    Changes, DeadLetter, DeadLetterAction, DocumentProjection, InlineTx, LogAfter, ProjectionState,
    ProjectionStore, Shard, Slot,
};
use crate::store::StoreError;
use crate::store::sql::convert::{
    bound, checkpoint_at, checkpoint_params, limit, stored_checkpoint,
};
use crate::store::sql::records_until_unreadable;

/// Moves `slot`'s checkpoint from `from` to `to` in `tx`; `false` when it is no longer
/// at `from`.
pub(super) async fn advance(
    tx: &mut Transaction<'_, Sqlite>,
    slot: &Slot,
    from: Checkpoint,
    to: Checkpoint,
) -> Result<bool, StoreError> {
    let (from_tx, from_pos) = checkpoint_params(from);
    let (to_tx, to_pos) = checkpoint_params(to);
    let advanced = sqlx::query(ADVANCE)
        .bind(&slot.name)
        .bind(slot.version)
        .bind(slot.generation)
        .bind(to_tx)
        .bind(to_pos)
        .bind(from_tx)
        .bind(from_pos)
        .bind(now())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(advanced.rows_affected() == 1)
}

pub(super) fn backend(error: sqlx::Error) -> StoreError {
    StoreError::backend(error)
}

fn json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::backend)
}

pub(super) fn now() -> i64 {
    micros(Utc::now())
}

impl ProjectionStore for SqliteStore {
    async fn open_projection(
        &self,
        name: &str,
        version: u32,
    ) -> Result<(Slot, Checkpoint), StoreError> {
        let live = |row: sqlx::sqlite::SqliteRow| -> Result<(Slot, Checkpoint), StoreError> {
            let generation: u32 = row.try_get(0).map_err(backend)?;
            let checkpoint = checkpoint_at(name, &row, 1)?;
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
        };
        let found = sqlx::query(OPEN)
            .bind(name)
            .bind(version)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        if let Some(row) = found {
            return live(row);
        }
        sqlx::query(START)
            .bind(name)
            .bind(version)
            .bind(now())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        let row = sqlx::query(OPEN)
            .bind(name)
            .bind(version)
            .fetch_one(&self.writer)
            .await
            .map_err(backend)?;
        live(row)
    }

    async fn begin_rebuild(&self, name: &str, version: u32) -> Result<Slot, StoreError> {
        let (live, _) = self.open_projection(name, version).await?;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for sql in [
            DROP_OTHER_DOCUMENTS,
            DROP_OTHER_LETTERS,
            DROP_OTHER_GENERATIONS,
        ] {
            sqlx::query(sql)
                .bind(name)
                .bind(version)
                .bind(live.generation)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let generation = live.generation + 1;
        sqlx::query(NEW_GENERATION)
            .bind(name)
            .bind(version)
            .bind(generation)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Slot {
            generation,
            live: false,
            ..live
        })
    }

    async fn promote(&self, slot: &Slot, at: Checkpoint) -> Result<bool, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let checkpoint =
            |row: Option<sqlx::sqlite::SqliteRow>| -> Result<Option<Checkpoint>, StoreError> {
                row.map(|row| checkpoint_at(&slot.name, &row, 1))
                    .transpose()
            };
        let live = checkpoint(
            sqlx::query(LIVE)
                .bind(&slot.name)
                .bind(slot.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?,
        )?;
        let rebuilt = sqlx::query(CHECKPOINT)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .map(|row| checkpoint_at(&slot.name, &row, 0))
            .transpose()?;
        if rebuilt != Some(at) || live.is_some_and(|live| live > at) {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        sqlx::query(UNSET_LIVE)
            .bind(&slot.name)
            .bind(slot.version)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(SET_LIVE)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for sql in [
            DROP_OTHER_DOCUMENTS,
            DROP_OTHER_LETTERS,
            DROP_OTHER_GENERATIONS,
        ] {
            sqlx::query(sql)
                .bind(&slot.name)
                .bind(slot.version)
                .bind(slot.generation)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn record_failure(
        &self,
        slot: &Slot,
        failure: Option<&str>,
        stopped: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(RECORD_FAILURE)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(failure)
            .bind(stopped && failure.is_some())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn projection_state(
        &self,
        name: &str,
        version: u32,
    ) -> Result<ProjectionState, StoreError> {
        let (building, failure, stopped, moved): (bool, Option<String>, bool, Option<i64>) =
            sqlx::query_as(STATE)
                .bind(name)
                .bind(version)
                .fetch_one(&self.reader)
                .await
                .map_err(backend)?;
        Ok(ProjectionState {
            building,
            failure,
            stopped,
            moved_at: moved.and_then(DateTime::from_timestamp_micros),
        })
    }

    async fn projection_versions(&self, name: &str) -> Result<Vec<(u32, bool)>, StoreError> {
        let rows: Vec<(i64, bool)> = sqlx::query_as(VERSIONS)
            .bind(name)
            .fetch_all(&self.reader)
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let mut dropped = 0;
        for sql in [DROP_DOCUMENTS, DROP_LETTERS, DROP_PROJECTION] {
            dropped += sqlx::query(sql)
                .bind(name)
                .bind(version)
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
        let rows = sqlx::query(READ_AT)
            .bind(bound(at.position))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        Ok(records_until_unreadable::<sqlx::Sqlite>(&rows)?.pop())
    }

    async fn projection_checkpoint(&self, slot: &Slot) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(CHECKPOINT)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .fetch_optional(&self.reader)
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
        let rows = sqlx::query(LOAD)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(json(&keys)?)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        documents(rows)
    }

    async fn commit_documents(
        &self,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
        changes: Changes,
    ) -> Result<bool, StoreError> {
        let (stored, deleted) = split(changes);
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        // The checkpoint first: a runner that lost the race writes nothing.
        let advanced = advance(&mut tx, slot, from, to).await?;
        if !advanced {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        write_documents(&mut tx, slot, &stored, &deleted).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn read_documents(
        &self,
        name: &str,
        version: u32,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(READ_LIVE)
            .bind(name)
            .bind(version)
            .bind(json(&keys)?)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        documents(rows)
    }

    async fn list_documents(
        &self,
        name: &str,
        version: u32,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(LIST_LIVE)
            .bind(name)
            .bind(version)
            .bind(after)
            .bind(limit(max))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        documents(rows)
    }

    async fn inline<P: DocumentProjection>(mut self) -> Result<Self, StoreError> {
        let (mut slot, at) = self.open_projection(P::NAME, P::VERSION).await?;
        if !slot.live {
            // Inline, a new version serves at once: it applies what is appended from now,
            // and replays nothing (as any projection made inline).
            self.promote(&slot, at).await?;
            slot.live = true;
        }
        sqlx::query(MARK_INLINE)
            .bind(P::NAME)
            .bind(P::VERSION)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        slot.inline = true;
        self.inline = self.inline.with::<P>(slot);
        Ok(self)
    }

    fn inline_projections(&self) -> Vec<(&'static str, u32)> {
        self.inline.names()
    }

    async fn log_after(&self, after: Checkpoint) -> Result<LogAfter, StoreError> {
        let row = sqlx::query(LOG_AFTER)
            .bind(bound(after.position))
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        let head: Option<i64> = row.try_get(0).map_err(backend)?;
        let events: i64 = row.try_get(1).map_err(backend)?;
        let first: Option<i64> = row.try_get(2).map_err(backend)?;
        let head = stored_checkpoint("log", head.unwrap_or(0), head.unwrap_or(0))?;
        Ok(LogAfter {
            head,
            events: u64::try_from(events).unwrap_or(0),
            first_recorded_at: first.and_then(DateTime::from_timestamp_micros),
        })
    }
}

fn documents(rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<(String, String)>, StoreError> {
    rows.into_iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(backend)?,
                row.try_get(1).map_err(backend)?,
            ))
        })
        .collect()
}

/// An append's transaction, for its inline projections.
pub(super) struct InTransaction<'t, 'c>(pub(super) &'t mut Transaction<'c, Sqlite>);

impl InlineTx for InTransaction<'_, '_> {
    async fn load(
        &mut self,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(LOAD)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(json(&keys)?)
            .fetch_all(&mut **self.0)
            .await
            .map_err(backend)?;
        documents(rows)
    }

    async fn write(
        &mut self,
        slot: &Slot,
        changes: Changes,
        _: &[String],
    ) -> Result<bool, StoreError> {
        // One writer at a time: no other append changes a document meanwhile.
        let (stored, deleted) = split(changes);
        write_documents(self.0, slot, &stored, &deleted).await?;
        Ok(true)
    }
}

/// The documents to store, as one JSON object of key to body, and the keys to delete.
pub(super) fn split(changes: Changes) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let (mut stored, mut deleted) = (serde_json::Map::new(), Vec::new());
    for (key, body) in changes {
        match body {
            Some(body) => {
                stored.insert(key, serde_json::Value::String(body));
            }
            None => deleted.push(key),
        }
    }
    (stored, deleted)
}

pub(super) async fn write_documents(
    tx: &mut Transaction<'_, Sqlite>,
    slot: &Slot,
    stored: &serde_json::Map<String, serde_json::Value>,
    deleted: &[String],
) -> Result<(), StoreError> {
    if !deleted.is_empty() {
        sqlx::query(DELETE)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(json(&deleted)?)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    if !stored.is_empty() {
        sqlx::query(UPSERT)
            .bind(&slot.name)
            .bind(slot.version)
            .bind(slot.generation)
            .bind(json(stored)?)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}
