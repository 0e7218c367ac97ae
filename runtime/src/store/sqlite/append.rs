//! Appends to the SQLite store, on its one writer connection: alone, or many streams'
//! appends in one transaction (group commit, one sync of the log for all of them).

use std::sync::Arc;

use chrono::Utc;
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::dialect::busy;
use super::statements::{INSERT_CHUNK, STREAM_VERSION, insert, stored_ids};
use crate::event::{Checkpoint, NewEvent};
use crate::projection::inline;
use crate::store::group::{Batch, Outcome, Request, Writer};
use crate::store::sql::{Dialect, UniqueKey, settle_conflict, storable, stored, stream_version};
use crate::store::{AppendResult, ExpectedVersion, StoreError, validate_append};

/// Every write transaction takes the write lock as it begins: one that read first and then
/// asked for it could not wait for another process's writer to finish (SQLite answers
/// "database is locked" at once), where this one waits up to the busy timeout.
const BEGIN: &str = "BEGIN IMMEDIATE";

/// Events one group commit takes at most; a larger append commits alone.
pub(super) const GROUP_MAX_EVENTS: usize = 1000;

/// Why an append's transaction did not go through.
enum Failed {
    /// The database refused (a key, a lock, I/O).
    Sql(sqlx::Error),
    /// A value the store cannot hold, or a corrupt one read on the way.
    Store(StoreError),
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// How an append alone ended, short of failing.
enum Attempt {
    Done(AppendResult),
    /// The stream was at this version, not at the expected one.
    WrongVersion(u64),
}

impl SqliteStore {
    /// Appends through group commit when the expected version is exact; alone when that
    /// is not possible or the group could not settle it.
    pub(super) async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let events = Arc::new(events);
        if let Some(done) = self.append_grouped(stream, expected, &events).await {
            self.announce();
            return Ok(done);
        }
        let wrong = |actual| StoreError::WrongExpectedVersion {
            stream: stream.to_owned(),
            expected,
            actual,
        };
        let conflict = match self.append_alone(stream, expected, &events).await {
            Ok(Attempt::Done(done)) => {
                self.announce();
                return Ok(done);
            }
            Ok(Attempt::WrongVersion(actual)) => wrong(actual),
            Err(Failed::Store(error)) => return Err(error),
            Err(Failed::Sql(error)) if busy(&error) => {
                return Err(StoreError::Busy {
                    stream: stream.to_owned(),
                    source: Box::new(error),
                });
            }
            // Another process appended between our read and write.
            Err(Failed::Sql(error)) => match Sqlite::violated(&error) {
                Some(UniqueKey::StreamVersion) => wrong(
                    stream_version(&self.reader, STREAM_VERSION, stream)
                        .await
                        .map_err(StoreError::backend)??,
                ),
                Some(UniqueKey::EventId) => StoreError::backend(error),
                None => return Err(StoreError::backend(error)),
            },
        };
        // Slow path only: a retried append carries a stale expected version or stored ids.
        let rows = self.stored_ids(&events).await?;
        settle_conflict(stream, &events, &rows, conflict)
    }

    async fn append_alone(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Attempt, Failed> {
        let mut tx = self.writer.begin_with(BEGIN).await?;
        let actual = stream_version(&mut *tx, STREAM_VERSION, stream).await??;
        if !expected.accepts(actual) {
            return Ok(Attempt::WrongVersion(actual));
        }
        let recorded_at = now();
        let done = insert_events(&mut tx, stream, actual, events, recorded_at).await?;
        self.apply_inline(&mut tx, stream, actual, events, &done, recorded_at)
            .await?;
        tx.commit().await?;
        Ok(Attempt::Done(done))
    }

    /// Appends through group commit when the expected version is exact. `None`: append
    /// alone.
    async fn append_grouped(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &Arc<Vec<NewEvent>>,
    ) -> Option<AppendResult> {
        let expected = expected
            .exact()
            .filter(|_| self.group.accepts(events.len()))?;
        let request = GroupRequest {
            stream: stream.to_owned(),
            expected,
            events: Arc::clone(events),
        };
        match self.group.settle(request, self).await {
            Outcome::Done(result) => Some(result),
            Outcome::Alone => None,
        }
    }

    /// Where each of `events`' ids is already stored, if anywhere.
    async fn stored_ids(
        &self,
        events: &[NewEvent],
    ) -> Result<Vec<(uuid::Uuid, String, i64, i64, i64)>, StoreError> {
        let mut rows = Vec::new();
        for chunk in events.chunks(INSERT_CHUNK) {
            let sql = stored_ids(chunk.len());
            let mut query =
                sqlx::query_as::<_, (uuid::fmt::Hyphenated, String, i64, i64, i64)>(&sql);
            for event in chunk {
                query = query.bind(event.event_id.hyphenated());
            }
            let found = query
                .fetch_all(&self.writer)
                .await
                .map_err(StoreError::backend)?;
            rows.extend(
                found
                    .into_iter()
                    .map(|(id, s, v, p, t)| (id.into_uuid(), s, v, p, t)),
            );
        }
        Ok(rows)
    }
}

impl SqliteStore {
    /// Applies the inline projections to the events just inserted, in the same
    /// transaction. One writer at a time: their positions are contiguous, in order.
    async fn apply_inline(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        stream: &str,
        actual: u64,
        events: &[NewEvent],
        done: &AppendResult,
        recorded_at: i64,
    ) -> Result<(), Failed> {
        if self.inline.is_empty() {
            return Ok(());
        }
        let positions: Vec<Checkpoint> = (done.first_position..=done.last_position)
            .map(|position| Checkpoint {
                transaction_id: position,
                position,
            })
            .collect();
        let time = chrono::DateTime::from_timestamp_micros(recorded_at).ok_or_else(|| {
            StoreError::backend(std::io::Error::other(format!(
                "{recorded_at} µs since 1970 is out of range"
            )))
        })?;
        let records = inline::records(stream, actual + 1, &positions, events, time);
        let mut on = super::projections::InTransaction(tx);
        inline::apply(&mut on, &self.inline, stream, &records).await?;
        Ok(())
    }
}

/// Microseconds since 1970, as the store keeps times.
fn now() -> i64 {
    super::dialect::micros(Utc::now())
}

/// Inserts `events` into `stream` after version `actual`, inside the caller's transaction.
async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    stream: &str,
    actual: u64,
    events: &[NewEvent],
    recorded_at: i64,
) -> Result<AppendResult, Failed> {
    let count = u64::try_from(events.len()).unwrap_or(u64::MAX);
    let last = storable(stream, "stream version", actual.saturating_add(count))?;
    let mut version = storable(stream, "stream version", actual)?;
    let metadata = events
        .iter()
        .map(|e| serde_json::to_string(&e.metadata))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::backend)?;
    let mut positions = Vec::with_capacity(events.len());
    for (chunk, meta) in events
        .chunks(INSERT_CHUNK)
        .zip(metadata.chunks(INSERT_CHUNK))
    {
        let sql = insert(chunk.len());
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for (event, meta) in chunk.iter().zip(meta) {
            version += 1;
            query = query
                .bind(stream)
                .bind(version)
                .bind(event.event_id.hyphenated())
                .bind(event.name.as_str())
                .bind(i64::from(event.version))
                .bind(event.payload.get())
                .bind(meta.as_str())
                .bind(recorded_at);
        }
        positions.extend(query.fetch_all(&mut **tx).await?);
    }
    let (first, last_position) = (
        positions.iter().copied().min().unwrap_or(0),
        positions.iter().copied().max().unwrap_or(0),
    );
    Ok(AppendResult {
        stream_version: stored(stream, last_position, "stream version", last)?,
        first_position: stored(stream, first, "position", first)?,
        last_position: stored(stream, last_position, "position", last_position)?,
        // One writer at a time: positions are commit order, and stand for transaction ids.
        transaction_id: stored(stream, last_position, "position", last_position)?,
        already_stored: false,
    })
}

/// An append waiting for group commit. It shares the events with the appending caller,
/// which appends them alone if the group does not settle the request.
pub(super) struct GroupRequest {
    stream: String,
    expected: u64,
    events: Arc<Vec<NewEvent>>,
}

impl Request for GroupRequest {
    fn stream(&self) -> &str {
        &self.stream
    }

    fn len(&self) -> usize {
        self.events.len()
    }
}

impl Writer<GroupRequest> for SqliteStore {
    /// Writes a group's requests in one transaction, so one commit (one sync of the log)
    /// settles them all. A request whose stream is not at its expected version is left to
    /// append alone, where conflicts and retried appends are told apart; so is every
    /// request when the transaction fails.
    async fn write(&self, batch: &Batch<GroupRequest>) -> Vec<Outcome> {
        let written = async {
            let mut tx = self.writer.begin_with(BEGIN).await?;
            let recorded_at = now();
            let mut outcomes = Vec::with_capacity(batch.requests().len());
            for request in batch.requests() {
                let actual = stream_version(&mut *tx, STREAM_VERSION, &request.stream).await??;
                outcomes.push(if actual == request.expected {
                    let done = insert_events(
                        &mut tx,
                        &request.stream,
                        actual,
                        &request.events,
                        recorded_at,
                    )
                    .await?;
                    self.apply_inline(
                        &mut tx,
                        &request.stream,
                        actual,
                        &request.events,
                        &done,
                        recorded_at,
                    )
                    .await?;
                    Outcome::Done(done)
                } else {
                    Outcome::Alone
                });
            }
            tx.commit().await?;
            Ok::<_, Failed>(outcomes)
        };
        written.await.unwrap_or_else(|failed| {
            let error = match failed {
                Failed::Sql(error) => error.to_string(),
                Failed::Store(error) => error.to_string(),
            };
            tracing::debug!(%error, requests = batch.requests().len(), "group commit failed; each appends alone");
            Vec::new()
        })
    }
}
