//! An in-memory store for tests and prototypes.

mod projections;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::Utc;
use uuid::Uuid;

use tokio::sync::watch;

use crate::event::{Checkpoint, NewEvent, RecordedEvent};
use crate::projection::InlineSet;
use crate::store::{
    AppendResult, EventStore, ExpectedVersion, SnapshotRead, SnapshotRecord, StoreError,
    StoreSession, VersionRange, replayed_append, validate_append, validate_stream_id,
};

/// An event store held in memory: same behaviour as the database stores, nothing persisted.
///
/// ```
/// use annals::MemoryStore;
/// let store = MemoryStore::new();
/// let copy = store.clone(); // shares the same events
/// # drop(copy);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<RwLock<Log>>,
    appended: Arc<watch::Sender<u64>>,
    /// The projections applied inside each append.
    inline: InlineSet,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            appended: Arc::new(watch::channel(0).0),
            inline: InlineSet::default(),
        }
    }
}

#[derive(Default)]
struct Log {
    /// All events in global order; position `p` is at index `p - 1`.
    events: Vec<RecordedEvent>,
    /// Each stream's event indexes, in version order.
    streams: HashMap<String, Vec<usize>>,
    /// Index of each event id.
    ids: HashMap<Uuid, usize>,
    /// The newest snapshot of each stream.
    snapshots: HashMap<String, SnapshotRecord>,
    /// The projections' checkpoints and documents.
    projections: projections::Projections,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave the log half-written (appends check
    // everything before mutating), so a poisoned lock is safe to keep using.
    fn read(&self) -> RwLockReadGuard<'_, Log> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Log> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("events", &self.read().events.len())
            .finish()
    }
}

impl Log {
    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        inline: &InlineSet,
    ) -> Result<AppendResult, StoreError> {
        let stored: Vec<_> = events
            .iter()
            .map(|e| {
                self.ids.get(&e.event_id).map(|&i| {
                    let r = &self.events[i];
                    (r.stream_id.clone(), r.stream_version, r.checkpoint())
                })
            })
            .collect();
        if let Some(original) = replayed_append(stream, &stored, &events)? {
            return Ok(original);
        }
        let actual = self.stream_version(stream);
        if !expected.accepts(actual) {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual,
            });
        }
        let recorded_at = Utc::now();
        let first_position = self.events.len() as u64 + 1;
        let count = events.len() as u64;
        let records: Vec<RecordedEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                let position = first_position + i as u64;
                RecordedEvent {
                    event_id: event.event_id,
                    stream_id: stream.to_owned(),
                    stream_version: actual + i as u64 + 1,
                    position,
                    transaction_id: position,
                    recorded_at,
                    name: event.name,
                    version: event.version,
                    payload: event.payload,
                    metadata: event.metadata,
                }
            })
            .collect();
        // The inline projections first: a refusal leaves the log and every read model as
        // they were.
        if !inline.is_empty() {
            let writes = self.projections.inline(inline, stream, &records)?;
            self.projections.apply(writes);
        }
        let mut indexes = Vec::with_capacity(records.len());
        for record in records {
            let index = self.events.len();
            self.ids.insert(record.event_id, index);
            self.events.push(record);
            indexes.push(index);
        }
        self.streams
            .entry(stream.to_owned())
            .or_default()
            .extend(indexes);
        Ok(AppendResult {
            stream_version: actual + count,
            first_position,
            last_position: first_position + count - 1,
            transaction_id: first_position + count - 1,
            already_stored: false,
        })
    }
}

impl Log {
    /// The stream's events within `range`, in version order.
    fn range(&self, stream: &str, range: VersionRange) -> Vec<RecordedEvent> {
        let Some(indexes) = self.streams.get(stream) else {
            return Vec::new();
        };
        let start = usize::try_from(range.from - 1)
            .unwrap_or(usize::MAX)
            .min(indexes.len());
        let end = usize::try_from(range.to)
            .unwrap_or(usize::MAX)
            .min(indexes.len())
            .max(start);
        indexes[start..end]
            .iter()
            .map(|&i| self.events[i].clone())
            .collect()
    }
}

impl Log {
    fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |s| s.len() as u64)
    }
}

impl EventStore for MemoryStore {
    type Session<'a> = MemorySession<'a>;

    async fn session(&self) -> Result<MemorySession<'_>, StoreError> {
        Ok(MemorySession(self))
    }

    fn append_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.appended.subscribe())
    }
}

/// A [`MemoryStore`] session: there is no connection to hold, so it works on the store.
#[derive(Debug)]
pub struct MemorySession<'a>(&'a MemoryStore);

impl StoreSession for MemorySession<'_> {
    async fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let result = self
            .0
            .write()
            .append(stream, expected, events, &self.0.inline)?;
        if !result.already_stored {
            self.0.appended.send_modify(|n| *n += 1);
        }
        Ok(result)
    }

    async fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream)?;
        Ok(self.0.read().range(stream, range))
    }

    async fn read_all(
        &mut self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.0.read();
        let start = log.events.partition_point(|e| e.checkpoint() <= after);
        Ok(log.events[start..].iter().take(limit).cloned().collect())
    }

    async fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        validate_stream_id(stream)?;
        Ok(self.0.read().stream_version(stream))
    }

    async fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        validate_stream_id(stream)?;
        // Snapshot and events under one lock, as one query reads them on the databases.
        let log = self.0.read();
        let current = log.stream_version(stream);
        let snapshot = log
            .snapshots
            .get(stream)
            .filter(|s| s.fingerprint == fingerprint && s.version <= to.min(current))
            .cloned();
        let from = snapshot.as_ref().map_or(0, |s| s.version) + 1;
        let events = log.range(stream, VersionRange::new(from..=to));
        Ok(SnapshotRead { snapshot, events })
    }

    async fn read_snapshot(&mut self, stream: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        validate_stream_id(stream)?;
        Ok(self.0.read().snapshots.get(stream).cloned())
    }

    async fn write_snapshot(&mut self, snapshot: SnapshotRecord) -> Result<(), StoreError> {
        validate_stream_id(&snapshot.stream_id)?;
        let mut log = self.0.write();
        let current = log.stream_version(&snapshot.stream_id);
        let keep = log.snapshots.get(&snapshot.stream_id).is_some_and(|old| {
            old.version > snapshot.version
                && old.fingerprint == snapshot.fingerprint
                && old.version <= current
        });
        if !keep {
            log.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }
}
