//! The storage contract every backend implements.

use std::fmt;
use std::future::Future;
use std::ops::{Bound, RangeBounds};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{Checkpoint, DecodeError, EventSet, NewEvent, RecordedEvent};
use crate::subscription::Subscription;

/// The stream version an append expects to find, checked atomically with the write.
///
/// Stream versions start at 1 for the first event; version 0 means "no stream".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet (same as `Exact(0)`).
    NoStream,
    /// The stream must be exactly at this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(v) => actual == v,
        }
    }

    /// The one version this expectation accepts (`NoStream`: 0); `None` for `Any`. Only
    /// such appends can join a group commit, which checks each against its version.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn exact(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exact(v) => Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream | Self::Exact(0) => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append (the last appended event's version).
    pub stream_version: u64,
    /// The global position of the first appended event.
    pub first_position: u64,
    /// The global position of the last appended event.
    pub last_position: u64,
    /// True when every event id was already stored: nothing was written and the
    /// positions are those of the original append.
    pub already_stored: bool,
}

/// A storage failure, with the facts needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream was not at the expected version: someone else appended first.
    #[error(
        "wrong expected version for stream `{stream}`: expected {expected}, found version {actual}"
    )]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0 when it does not exist).
        actual: u64,
    },
    /// The stream id cannot be stored.
    #[error("invalid stream id {stream:?}: {reason}")]
    InvalidStreamId {
        /// The rejected id.
        stream: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An append with no events.
    #[error("append to stream `{stream}` has no events")]
    EmptyAppend {
        /// The stream appended to.
        stream: String,
    },
    /// An event id is already stored, but not as part of an identical retry of this append
    /// (another stream, or only part of the batch).
    #[error(
        "event id {event_id} is already stored in stream `{existing_stream}` at version \
         {existing_version}; the append to `{stream}` is neither new nor a retry of that append"
    )]
    DuplicateEventId {
        /// The conflicting event id.
        event_id: Uuid,
        /// The stream appended to.
        stream: String,
        /// Where the id is already stored.
        existing_stream: String,
        /// Its version there.
        existing_version: u64,
    },
    /// The same event id appears twice in one append.
    #[error("event id {event_id} appears more than once in one append to stream `{stream}`")]
    DuplicateEventIdInBatch {
        /// The repeated event id.
        event_id: Uuid,
        /// The stream appended to.
        stream: String,
    },
    /// A stored row that cannot be read back (invalid JSON, out-of-range number).
    #[error("corrupt record at global position {position} of stream `{stream}`: {reason}")]
    Corrupt {
        /// The stream holding the record.
        stream: String,
        /// The record's global position.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be reached.
    #[error(
        "cannot connect to {url}: {source}\n  start a server (for PostgreSQL: `pg_ctlcluster <version> main start`, \
         or `./scripts/test`, which starts a throwaway one) or point DATABASE_URL at one"
    )]
    Connect {
        /// The URL, without its password.
        url: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema could not be created or upgraded.
    #[error("cannot migrate the {backend} schema: {source}")]
    Migration {
        /// Which backend.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A schema name that is not a plain lowercase identifier.
    #[error(
        "invalid schema name {schema:?}: use lowercase letters, digits and `_`, at most 48 characters"
    )]
    InvalidSchema {
        /// The rejected name.
        schema: String,
    },
    /// The database failed (connection, I/O, constraint, migration).
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// An inclusive range of stream versions to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    /// First version to read (at least 1).
    pub from: u64,
    /// Last version to read, inclusive.
    pub to: u64,
}

impl VersionRange {
    /// Normalises any range of versions (`..`, `5..`, `..=10`, `3..7`).
    pub fn new(range: impl RangeBounds<u64>) -> Self {
        let from = match range.start_bound() {
            Bound::Included(&v) => v,
            Bound::Excluded(&v) => v.saturating_add(1),
            Bound::Unbounded => 1,
        };
        let to = match range.end_bound() {
            Bound::Included(&v) => v,
            Bound::Excluded(&v) => v.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        Self {
            from: from.max(1),
            to,
        }
    }

    /// Whether `version` lies in the range.
    pub fn contains(&self, version: u64) -> bool {
        self.from <= version && version <= self.to
    }
}

/// The longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 1024;

/// Checks a stream id: non-empty, at most [`MAX_STREAM_ID_LEN`] bytes, no NUL character
/// (which PostgreSQL text cannot hold). Any other character, quotes included, is fine:
/// ids are always bound as parameters, never spliced into SQL.
pub fn validate_stream_id(stream: &str) -> Result<(), StoreError> {
    let reason = if stream.is_empty() {
        "a stream id must not be empty"
    } else if stream.len() > MAX_STREAM_ID_LEN {
        "a stream id must be at most 1024 bytes"
    } else if stream.contains('\0') {
        "a stream id must not contain a NUL character"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidStreamId {
        stream: stream.to_owned(),
        reason,
    })
}

/// A stored snapshot: an aggregate's state, serialised, right after stream version `version`.
///
/// Snapshots are a cache (guarantee 6): the store keeps the newest one per stream, and the
/// repository ignores any that is corrupt, of another fingerprint, or ahead of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The stream the state was folded from.
    pub stream_id: String,
    /// The stream version the state reflects (at least 1).
    pub version: u64,
    /// The aggregate's snapshot fingerprint (state type, `#[apply]` code, manual version).
    pub fingerprint: u64,
    /// The state as JSON text, as written (it may be corrupt: the reader checks).
    pub state: String,
    /// When the snapshot was taken.
    pub taken_at: DateTime<Utc>,
}

/// What [`EventStore::read_from_snapshot`] found: a usable snapshot, if any, and the
/// events after it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRead {
    /// The stream's snapshot, when it has the fingerprint asked for, is not beyond the
    /// version asked for and not beyond the stream's last event.
    pub snapshot: Option<SnapshotRecord>,
    /// The events after the snapshot (after version 0 without one), up to the version
    /// asked for, in version order.
    pub events: Vec<RecordedEvent>,
}

/// The event log: append-only streams with per-stream versions and a global order.
///
/// Every backend (memory, SQLite, PostgreSQL) passes the same conformance suite.
/// Stores are cheap handles: clone them freely.
///
/// ```
/// use annals::prelude::*;
/// use annals::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let event = NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1)?);
/// let done = store.append("ping-1", ExpectedVersion::NoStream, vec![event]).await?;
/// assert_eq!(done.stream_version, 1);
/// assert_eq!(store.read_stream("ping-1", ..).await?.len(), 1);
/// # Ok(()) }
/// ```
pub trait EventStore: Clone + Send + Sync + 'static {
    /// A handle that keeps one connection for several operations (see [`StoreSession`]).
    type Session<'a>: StoreSession
    where
        Self: 'a;

    /// Takes a connection for a sequence of reads and appends, such as one command's load
    /// and append: one pool checkout instead of one per operation.
    fn session(&self) -> impl Future<Output = Result<Self::Session<'_>, StoreError>> + Send;

    /// Appends `events` to `stream` atomically, if the stream is at `expected`.
    ///
    /// All events land, with contiguous stream versions, or none do. When every event id
    /// is already stored in this stream (a retried request), nothing is written and the
    /// original positions are returned with `already_stored` set.
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Reads a stream's events in version order within `range`.
    fn read_stream(
        &self,
        stream: &str,
        range: impl RangeBounds<u64> + Send,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Feeds a stream's events in `range`, in version order, to `f`, reading only what
    /// decoding needs (no metadata, ids or times): how aggregates load. Stops at `f`'s
    /// first error. The default goes through [`read_stream`](Self::read_stream).
    ///
    /// ```
    /// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StoreError, VersionRange};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), StoreError> {
    /// let store = MemoryStore::new();
    /// let ping = || NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1).unwrap());
    /// store.append("ping-1", ExpectedVersion::NoStream, vec![ping(), ping()]).await?;
    /// let mut seen = Vec::new();
    /// store
    ///     .fold_stream("ping-1", VersionRange::new(2..), |e| {
    ///         seen.push((e.stream_version, e.name.to_owned()));
    ///         Ok::<_, StoreError>(())
    ///     })
    ///     .await?;
    /// assert_eq!(seen, [(2, "Pinged".to_owned())]);
    /// # Ok(()) }
    /// ```
    fn fold_stream<F, E>(
        &self,
        stream: &str,
        range: VersionRange,
        f: F,
    ) -> impl Future<Output = Result<(), E>> + Send
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            let records = self.read_stream(stream, range.from..=range.to).await?;
            feed_records(&records, f)
        }
    }

    /// Reads up to `limit` events of all streams after `after`, in global order. Pass the
    /// last event's [`checkpoint`](RecordedEvent::checkpoint) to continue.
    ///
    /// Never returns an event while one that sorts before it may still commit, so a reader
    /// that resumes from its last checkpoint never skips an event.
    fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// [`read_all`](EventStore::read_all) without the metadata and without a copy: calls
    /// `f` with each event's checkpoint and a view borrowed from the row, in global order,
    /// and returns how many it saw. The first error `f` returns stops the read and is
    /// returned as is.
    ///
    /// ```
    /// use annals::prelude::*;
    /// use annals::{Checkpoint, MemoryStore, StoreError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), StoreError> {
    /// let store = MemoryStore::new();
    /// let ping = || NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1).unwrap());
    /// store.append("ping-1", ExpectedVersion::Any, vec![ping(), ping()]).await?;
    /// let mut last = Checkpoint::START;
    /// let seen = store
    ///     .fold_all(Checkpoint::START, 100, |checkpoint, e| {
    ///         assert_eq!(e.stream_id, "ping-1");
    ///         last = checkpoint;
    ///         Ok::<_, StoreError>(())
    ///     })
    ///     .await?;
    /// assert_eq!((seen, last.position), (2, 2));
    /// # Ok(()) }
    /// ```
    fn fold_all<F, E>(
        &self,
        after: Checkpoint,
        limit: usize,
        mut f: F,
    ) -> impl Future<Output = Result<usize, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            let records = self.read_all(after, limit).await?;
            for record in &records {
                f(record.checkpoint(), StoredEvent::of(record))?;
            }
            Ok(records.len())
        }
    }

    /// Catch-up, the first half of a subscription: feeds `f` every event after `from`
    /// that is readable now, in global order, in large pages through
    /// [`fold_all`](StoreSession::fold_all) on one [`session`](EventStore::session), and
    /// returns the checkpoint to
    /// [`subscribe`](EventStore::subscribe) from to go live. This is the fast path for
    /// rebuilding a read model.
    ///
    /// ```
    /// use annals::prelude::*;
    /// use annals::{Checkpoint, MemoryStore, StoreError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), StoreError> {
    /// let store = MemoryStore::new();
    /// let ping = || NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1).unwrap());
    /// store.append("ping-1", ExpectedVersion::Any, vec![ping(), ping(), ping()]).await?;
    /// let mut count = 0;
    /// let caught_up = store
    ///     .catch_up(Checkpoint::START, |_, _| {
    ///         count += 1;
    ///         Ok::<_, StoreError>(())
    ///     })
    ///     .await?;
    /// assert_eq!((count, caught_up.position), (3, 3));
    /// let mut live = store.subscribe(caught_up); // continues after the third event
    /// # drop(live); Ok(()) }
    /// ```
    fn catch_up<F, E>(
        &self,
        from: Checkpoint,
        mut f: F,
    ) -> impl Future<Output = Result<Checkpoint, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            // Every page in one session: on a store that holds connections, a page that
            // took its own could get a new one, whose first statement costs as much as a
            // page (a new PostgreSQL server process loads the catalogs).
            let mut session = self.session().await?;
            let mut cursor = from;
            loop {
                let seen = session
                    .fold_all(cursor, CATCH_UP_PAGE, |checkpoint, event| {
                        cursor = checkpoint;
                        f(checkpoint, event)
                    })
                    .await?;
                if seen < CATCH_UP_PAGE {
                    return Ok(cursor);
                }
            }
        }
    }

    /// A signal that changes after appends, so subscribers wake without polling hard.
    /// Stores without one are polled.
    #[doc(hidden)]
    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Every event after `from`, in global order: first those already stored, then live
    /// ones as they commit. Resumable from any checkpoint; back-pressured (a slow consumer
    /// pauses reading, nothing is buffered without bound).
    fn subscribe(&self, from: Checkpoint) -> Subscription {
        Subscription::start(
            self.clone(),
            from,
            crate::subscription::SubscriptionOptions::default(),
        )
    }

    /// The stream's current version (0 when it does not exist).
    fn stream_version(&self, stream: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Reads the stream's snapshot tagged `fingerprint` that is at most version `to` and
    /// not beyond the stream's last event, and the events after it up to `to`: one round
    /// trip on the database backends. Without such a snapshot, the events `1..=to`.
    ///
    /// The default, for stores that keep no snapshots, reads the events only.
    fn read_from_snapshot(
        &self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> impl Future<Output = Result<SnapshotRead, StoreError>> + Send {
        let _ = fingerprint;
        async move {
            Ok(SnapshotRead {
                snapshot: None,
                events: self.read_stream(stream, ..=to).await?,
            })
        }
    }

    /// The stream's stored snapshot, whatever its fingerprint or version (for tests and
    /// operations; loading uses [`read_from_snapshot`](Self::read_from_snapshot)).
    fn read_snapshot(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<SnapshotRecord>, StoreError>> + Send {
        let _ = stream;
        async { Ok(None) }
    }

    /// Stores `snapshot` as the stream's snapshot, replacing the one it had unless that one
    /// is newer, has the same fingerprint and is within the stream: snapshot writes run in
    /// tasks of their own, and a late write of an older state must not replace a newer one.
    ///
    /// The default, for stores that keep no snapshots, does nothing.
    fn write_snapshot(
        &self,
        snapshot: SnapshotRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        drop(snapshot);
        async { Ok(()) }
    }
}

/// Events per query of [`EventStore::catch_up`]: large, so that a rebuild spends its time
/// on rows, not on round trips; rows stream in, so the page is never held whole.
const CATCH_UP_PAGE: usize = 65536;

/// The checks every backend makes before writing: a valid stream id, at least one event,
/// no event id twice in the batch.
pub(crate) fn validate_append(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    validate_stream_id(stream)?;
    if events.is_empty() {
        return Err(StoreError::EmptyAppend {
            stream: stream.to_owned(),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    match events.iter().find(|e| !seen.insert(e.event_id)) {
        Some(e) => Err(StoreError::DuplicateEventIdInBatch {
            event_id: e.event_id,
            stream: stream.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The operations a command needs, on one connection; see [`EventStore::session`].
///
/// Same semantics as the [`EventStore`] methods of the same names.
pub trait StoreSession: Send {
    /// See [`EventStore::read_stream`].
    fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// See [`EventStore::append`].
    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// See [`EventStore::fold_stream`].
    fn fold_stream<F, E>(
        &mut self,
        stream: &str,
        range: VersionRange,
        f: F,
    ) -> impl Future<Output = Result<(), E>> + Send
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            let records = self.read_stream(stream, range).await?;
            feed_records(&records, f)
        }
    }

    /// See [`EventStore::fold_all`].
    fn fold_all<F, E>(
        &mut self,
        after: Checkpoint,
        limit: usize,
        f: F,
    ) -> impl Future<Output = Result<usize, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send;

    /// See [`EventStore::read_from_snapshot`]. The default reads the events only.
    fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> impl Future<Output = Result<SnapshotRead, StoreError>> + Send {
        let _ = fingerprint;
        async move {
            Ok(SnapshotRead {
                snapshot: None,
                events: self.read_stream(stream, VersionRange::new(..=to)).await?,
            })
        }
    }
}

/// One stored event as an aggregate's load sees it, borrowed from the row that holds it:
/// what decoding needs and where the event is, without its metadata.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StoredEvent<'a> {
    /// The stream it belongs to.
    pub stream_id: &'a str,
    /// Its version in its stream.
    pub stream_version: u64,
    /// Its global position.
    pub position: u64,
    /// The stored event name.
    pub name: &'a str,
    /// The stored schema version.
    pub version: u32,
    /// The JSON payload, as stored.
    pub payload: &'a str,
}

impl<'a> StoredEvent<'a> {
    /// Decodes the payload into an aggregate's event set, upcasting old versions.
    ///
    /// ```
    /// use annals::prelude::*;
    /// use annals::{Checkpoint, MemoryStore};
    ///
    /// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    /// struct Pinged {
    ///     n: u32,
    /// }
    ///
    /// #[derive(Default)]
    /// struct Pinger;
    ///
    /// #[aggregate(category = "pinger")]
    /// impl Pinger {
    ///     #[apply]
    ///     fn pinged(&mut self, _: &Pinged) {}
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged { n: 7 })?]).await?;
    /// let mut seen = Vec::new();
    /// store
    ///     .catch_up(Checkpoint::START, |_, e| {
    ///         let PingerEvent::Pinged(p) = e.decode::<PingerEvent>()?;
    ///         seen.push(p.n);
    ///         Ok::<_, annals::Error>(())
    ///     })
    ///     .await?;
    /// assert_eq!(seen, [7]);
    /// # Ok(()) }
    /// ```
    pub fn decode<E: EventSet>(&self) -> Result<E, DecodeError> {
        E::decode(self.name, self.version, self.payload)
            .map_err(|kind| DecodeError::stored(self, kind))
    }

    /// The lean view of a full record.
    pub fn of(record: &'a RecordedEvent) -> Self {
        Self {
            stream_id: &record.stream_id,
            stream_version: record.stream_version,
            position: record.position,
            name: &record.name,
            version: record.version,
            payload: record.payload.get(),
        }
    }
}

/// Reads column `index` of a backend's own row: with sqlx's type check where values carry
/// their own types (SQLite), without it where the schema fixes each column's type
/// (PostgreSQL; the check costs more than the decode). Either way a value that does not
/// decode is an error, never a wrong value.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn column<'r, R, T, const TRUSTED: bool>(row: &'r R, index: usize) -> Result<T, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    if TRUSTED {
        row.try_get_unchecked(index)
    } else {
        row.try_get(index)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<'r> StoredEvent<'r> {
    /// Reads the columns (stream_version, position, event_name, event_version, payload) of
    /// a row of `stream`; a missing or out-of-range one is a `Corrupt` error naming it.
    /// `TRUSTED`: see [`column`].
    pub(crate) fn from_row<R, const TRUSTED: bool>(
        stream: &'r str,
        row: &'r R,
    ) -> Result<Self, StoreError>
    where
        R: sqlx::Row,
        usize: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let position: i64 = column::<R, _, TRUSTED>(row, 1)
            .map_err(|e| RawRecord::unreadable(stream.to_owned(), 0, e))?;
        let corrupt = |reason: String| RawRecord::unreadable(stream.to_owned(), position, reason);
        let get = |e: sqlx::Error| corrupt(e.to_string());
        let unsigned = |what: &str, v: i64| {
            u64::try_from(v).map_err(|_| corrupt(format!("negative {what} {v}")))
        };
        let version: i32 = column::<R, _, TRUSTED>(row, 3).map_err(get)?;
        let stream_version: i64 = column::<R, _, TRUSTED>(row, 0).map_err(get)?;
        Ok(Self {
            stream_id: stream,
            stream_version: unsigned("stream version", stream_version)?,
            position: unsigned("position", position)?,
            name: column::<R, _, TRUSTED>(row, 2).map_err(get)?,
            version: u32::try_from(version)
                .map_err(|_| corrupt(format!("event version {version} out of range")))?,
            payload: column::<R, _, TRUSTED>(row, 4).map_err(get)?,
        })
    }

    /// Reads a row of the global order: the columns of [`StoredEvent::from_row`], then
    /// stream_id; `transaction` is the transaction id, as the backend reads it.
    pub(crate) fn from_global_row<R, const TRUSTED: bool>(
        row: &'r R,
        transaction: Result<i64, sqlx::Error>,
    ) -> Result<(Checkpoint, Self), StoreError>
    where
        R: sqlx::Row,
        usize: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let stream: &'r str = column::<R, _, TRUSTED>(row, 5).map_err(|e| {
            let position = column::<R, i64, TRUSTED>(row, 1).unwrap_or(0);
            RawRecord::unreadable(String::new(), position, e)
        })?;
        let event = Self::from_row::<R, TRUSTED>(stream, row)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: stream.to_owned(),
            position: event.position,
            reason,
        };
        let transaction = transaction.map_err(|e| corrupt(e.to_string()))?;
        let transaction_id = u64::try_from(transaction)
            .map_err(|_| corrupt(format!("negative transaction id {transaction}")))?;
        let checkpoint = Checkpoint {
            transaction_id,
            position: event.position,
        };
        Ok((checkpoint, event))
    }
}

/// Hands each row of a streamed query to `f` as it arrives, so decoding overlaps the
/// transfer and a page is never held whole; stops at the first error. Returns how many
/// rows `f` took.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn for_each_row<R, E>(
    mut rows: futures_core::stream::BoxStream<'_, Result<R, sqlx::Error>>,
    mut f: impl FnMut(&R) -> Result<(), E>,
) -> Result<usize, E>
where
    E: From<StoreError>,
{
    let mut seen = 0;
    while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        f(&row.map_err(StoreError::backend)?)?;
        seen += 1;
    }
    Ok(seen)
}

fn feed_records<F, E>(records: &[RecordedEvent], mut f: F) -> Result<(), E>
where
    F: FnMut(StoredEvent<'_>) -> Result<(), E>,
{
    records.iter().try_for_each(|r| f(StoredEvent::of(r)))
}

/// The session of a store with no connection to hold: it calls the store itself.
#[derive(Debug)]
pub struct SharedSession<'a, S>(pub &'a S);

impl<S: EventStore> StoreSession for SharedSession<'_, S> {
    async fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, range.from..=range.to).await
    }

    async fn fold_stream<F, E>(&mut self, stream: &str, range: VersionRange, f: F) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        self.0.fold_stream(stream, range, f).await
    }

    async fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.0.append(stream, expected, events).await
    }

    async fn fold_all<F, E>(&mut self, after: Checkpoint, limit: usize, f: F) -> Result<usize, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        self.0.fold_all(after, limit, f).await
    }

    async fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        self.0.read_from_snapshot(stream, fingerprint, to).await
    }
}

/// Checks an idempotent retry: `stored[i]` is where `events[i]`'s id is already stored,
/// if it is. Returns the original result when the whole batch is stored, in this stream,
/// in this order; `None` when none of it is; an error for anything in between.
pub(crate) fn replayed_append(
    stream: &str,
    stored: &[Option<(String, u64, u64)>],
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    if stored.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut previous: Option<u64> = None;
    for (found, event) in stored.iter().zip(events) {
        match found {
            Some((s, v, _)) if s == stream && previous.is_none_or(|p| p + 1 == *v) => {
                previous = Some(*v)
            }
            // Report the first id that is stored, and where: that is what conflicts.
            _ => {
                let (event_id, (existing_stream, existing_version, _)) = stored
                    .iter()
                    .zip(events)
                    .find_map(|(f, e)| f.clone().map(|f| (e.event_id, f)))
                    .unwrap_or((event.event_id, Default::default()));
                return Err(StoreError::DuplicateEventId {
                    event_id,
                    stream: stream.to_owned(),
                    existing_stream,
                    existing_version,
                });
            }
        }
    }
    let first = stored
        .iter()
        .flatten()
        .map(|(_, _, p)| *p)
        .min()
        .unwrap_or(0);
    let last = stored
        .iter()
        .flatten()
        .map(|(_, _, p)| *p)
        .max()
        .unwrap_or(0);
    Ok(Some(AppendResult {
        stream_version: previous.unwrap_or(0),
        first_position: first,
        last_position: last,
        already_stored: true,
    }))
}

/// A stored row as a SQL backend reads it, before any check. Each backend only maps its
/// columns; the conversions and the corruption reports are the same everywhere.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct RawRecord {
    pub position: i64,
    /// `None` where positions are commit order: the position is used.
    pub transaction_id: Option<i64>,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub name: String,
    pub version: i64,
    pub payload: String,
    pub metadata: String,
    /// `None` when the stored time is out of range.
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl RawRecord {
    /// The error for a row whose columns cannot even be read.
    pub fn unreadable(stream: String, position: i64, error: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            stream,
            position: u64::try_from(position).unwrap_or(0),
            reason: error.to_string(),
        }
    }

    /// Checks and converts every field; a bad one is a `Corrupt` error naming the row.
    pub fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: self.stream_id.clone(),
            position: u64::try_from(self.position).unwrap_or(0),
            reason,
        };
        let unsigned = |name: &str, v: i64| {
            u64::try_from(v).map_err(|_| corrupt(format!("negative {name} {v}")))
        };
        let position = unsigned("position", self.position)?;
        Ok(RecordedEvent {
            position,
            transaction_id: match self.transaction_id {
                Some(id) => unsigned("transaction id", id)?,
                None => position,
            },
            stream_version: unsigned("stream version", self.stream_version)?,
            event_id: self.event_id,
            version: u32::try_from(self.version)
                .map_err(|_| corrupt(format!("event version {} out of range", self.version)))?,
            payload: serde_json::value::RawValue::from_string(self.payload)
                .map_err(|e| corrupt(format!("payload is not JSON: {e}")))?,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| corrupt(format!("invalid metadata: {e}")))?,
            recorded_at: self
                .recorded_at
                .ok_or_else(|| corrupt("recorded time out of range".to_owned()))?,
            name: self.name,
            stream_id: self.stream_id,
        })
    }
}
