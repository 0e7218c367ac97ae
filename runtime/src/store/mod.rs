//! The event log: the contract every backend implements, the rules they share, group
//! commit, subscriptions, and the backends themselves.

mod error;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod group;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod rules;
mod session;
mod snapshot;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod subscription;
mod version;

use std::future::Future;
use std::ops::RangeBounds;

use crate::event::{Checkpoint, NewEvent, RecordedEvent, StoredEvent};

pub use error::{OpenError, StoreError};
pub use rules::{MAX_STREAM_ID_LEN, validate_stream_id};
pub(crate) use rules::{replayed_append, validate_append};
pub use session::StoreSession;
pub use snapshot::{SnapshotRead, SnapshotRecord};
pub use subscription::{Subscription, SubscriptionOptions};
pub use version::{AppendResult, ExpectedVersion, VersionRange};

/// The event log: append-only streams with per-stream versions and a global order.
///
/// Every backend (memory, SQLite, PostgreSQL) passes the same conformance suite. A backend
/// implements its [`StoreSession`] once, which holds the operations; the store-level
/// methods here are provided on top of it, each on a session of its own. Stores are cheap
/// handles: clone them freely.
///
/// ```
/// use annals::prelude::*;
/// use annals::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let event = NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1)?)?;
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
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send {
        async move { self.session().await?.append(stream, expected, events).await }
    }

    /// Reads a stream's events in version order within `range`.
    fn read_stream(
        &self,
        stream: &str,
        range: impl RangeBounds<u64> + Send,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        let range = VersionRange::new(range);
        async move { self.session().await?.read_stream(stream, range).await }
    }

    /// Feeds a stream's events in `range`, in version order, to `f`, reading only what
    /// decoding needs (no metadata, ids or times): how aggregates load. Stops at `f`'s
    /// first error.
    ///
    /// ```
    /// use annals::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StoreError, VersionRange};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), StoreError> {
    /// let store = MemoryStore::new();
    /// let ping = || NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1).unwrap()).expect("a valid event name");
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
        async move { self.session().await?.fold_stream(stream, range, f).await }
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
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        async move { self.session().await?.read_all(after, limit).await }
    }

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
    /// let ping = || NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1).unwrap()).expect("a valid event name");
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
        f: F,
    ) -> impl Future<Output = Result<usize, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move { self.session().await?.fold_all(after, limit, f).await }
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
    /// let ping = || NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1).unwrap()).expect("a valid event name");
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
        Subscription::start(self.clone(), from, SubscriptionOptions::default())
    }

    /// The stream's current version (0 when it does not exist).
    fn stream_version(&self, stream: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move { self.session().await?.stream_version(stream).await }
    }

    /// Reads the stream's snapshot tagged `fingerprint` that is at most version `to` and
    /// not beyond the stream's last event, and the events after it up to `to`: one round
    /// trip on the database backends. Without such a snapshot, the events `1..=to`.
    fn read_from_snapshot(
        &self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> impl Future<Output = Result<SnapshotRead, StoreError>> + Send {
        async move {
            let mut session = self.session().await?;
            session.read_from_snapshot(stream, fingerprint, to).await
        }
    }

    /// The stream's stored snapshot, whatever its fingerprint or version (for tests and
    /// operations; loading uses [`read_from_snapshot`](Self::read_from_snapshot)).
    fn read_snapshot(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<SnapshotRecord>, StoreError>> + Send {
        async move { self.session().await?.read_snapshot(stream).await }
    }

    /// Stores `snapshot` as the stream's snapshot, replacing the one it had unless that one
    /// is newer, has the same fingerprint and is within the stream: snapshot writes run in
    /// tasks of their own, and a late write of an older state must not replace a newer one.
    fn write_snapshot(
        &self,
        snapshot: SnapshotRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.session().await?.write_snapshot(snapshot).await }
    }
}

/// Events per query of [`EventStore::catch_up`]: large, so that a rebuild spends its time
/// on rows, not on round trips; rows stream in, so the page is never held whole.
const CATCH_UP_PAGE: usize = 65536;
