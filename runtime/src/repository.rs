//! Loading aggregates and executing commands against a store.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Handle};
use crate::event::{DecodeError, Envelope, EventSet, Metadata, NewEvent, RecordedEvent};
use crate::store::{
    EventStore, ExpectedVersion, SharedSession, SnapshotRead, SnapshotRecord, StoreError,
    StoreSession, StoredEvent, VersionRange,
};

/// A failure to load an aggregate or to record its events.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded; it is never skipped.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An event produced by a command could not be serialised.
    #[error("cannot serialise event `{name}` for stream `{stream}`: {source}")]
    Encode {
        /// The stream the event was for.
        stream: String,
        /// The event's name.
        name: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// `load_at_version` asked for a version the stream has not reached.
    #[error("stream `{stream}` has no version {requested} (its current version is {current})")]
    VersionNotFound {
        /// The stream read.
        stream: String,
        /// The version asked for.
        requested: u64,
        /// The stream's current version.
        current: u64,
    },
    /// Every attempt of a command met a concurrent append.
    #[error(
        "command on stream `{stream}` conflicted with concurrent appends {attempts} times; \
         last seen version {actual}"
    )]
    RetriesExhausted {
        /// The contended stream.
        stream: String,
        /// How many times the command was tried.
        attempts: u32,
        /// The version found on the last attempt.
        actual: u64,
    },
}

/// The outcome of a failed [`Repository::execute`]: the domain said no, or something broke.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The aggregate rejected the command with its domain error.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// Loading or appending failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl<E> ExecuteError<E> {
    /// The domain error, when the command was rejected.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            Self::Rejected(e) => Some(e),
            Self::Failed(_) => None,
        }
    }
}

/// Who and what a command comes from: flows into every event it records.
///
/// ```
/// use annals::CommandContext;
///
/// let ctx = CommandContext::new().with_actor("alice").with_header("ip", "10.0.0.1");
/// assert_eq!(ctx.correlation_id(), ctx.causation_id()); // a new conversation
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandContext {
    metadata: Metadata,
}

impl CommandContext {
    /// A command that starts a new conversation (fresh correlation and causation id).
    pub fn new() -> Self {
        Self {
            metadata: Metadata::root(Uuid::now_v7()),
        }
    }

    /// A command caused by a recorded event: same conversation, caused by that event.
    pub fn caused_by(event: &RecordedEvent) -> Self {
        Self {
            metadata: Metadata {
                correlation_id: event.metadata.correlation_id,
                causation_id: event.event_id,
                actor: event.metadata.actor.clone(),
                headers: BTreeMap::new(),
            },
        }
    }

    /// Sets the correlation id (for example from an incoming request's trace).
    #[must_use]
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.metadata.correlation_id = id;
        self
    }

    /// Sets the causation id (the id of the message that caused this command).
    #[must_use]
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.metadata.causation_id = id;
        self
    }

    /// Sets who issues the command.
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.metadata.actor = Some(actor.into());
        self
    }

    /// Adds a custom header, stored with each event.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.headers.insert(key.into(), value.into());
        self
    }

    /// The conversation id.
    pub fn correlation_id(&self) -> Uuid {
        self.metadata.correlation_id
    }

    /// The cause recorded on the command's events.
    pub fn causation_id(&self) -> Uuid {
        self.metadata.causation_id
    }

    /// The metadata every event of the command carries.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl Default for CommandContext {
    fn default() -> Self {
        Self::new()
    }
}

/// An aggregate's state at a version. Dereferences to the state.
#[derive(Clone, Debug, Default)]
pub struct Loaded<A> {
    state: A,
    version: u64,
}

impl<A> Loaded<A> {
    /// The state.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The stream version the state reflects (0 for an aggregate with no events).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Takes the state out.
    pub fn into_state(self) -> A {
        self.state
    }
}

impl<A> Deref for Loaded<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.state
    }
}

/// What a successful [`Repository::execute`] recorded.
#[derive(Debug)]
pub struct Executed<E> {
    /// The events the command produced, in order (empty when it decided nothing).
    pub events: Vec<E>,
    /// The stream version after the command.
    pub stream_version: u64,
    /// The global position of the last event recorded, if any.
    pub last_position: Option<u64>,
    /// How many times the command was decided against the stored state: more than 1
    /// after concurrency conflicts. A [`Handle::CREATES`] command's bet that its stream
    /// is new does not count.
    pub attempts: u32,
}

/// Loads aggregates of type `A` from a store and runs commands against them.
///
/// ```
/// use annals::prelude::*;
/// use annals::MemoryStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Incremented { by: u32 }
/// struct Increment(u32);
///
/// #[derive(Default)]
/// struct Counter { value: u32 }
///
/// #[aggregate]
/// impl Counter {
///     #[command]
///     fn increment(&self, cmd: &Increment) -> Incremented { Incremented { by: cmd.0 } }
///     #[apply]
///     fn incremented(&mut self, e: &Incremented) { self.value += e.by }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let counters = Repository::<Counter, _>::new(MemoryStore::new());
/// counters.execute("c1", Increment(2)).await?;
/// counters.execute("c1", Increment(3)).await?;
/// let c1 = counters.load("c1").await?;
/// assert_eq!((c1.value, c1.version()), (5, 2));
/// # Ok(()) }
/// ```
pub struct Repository<A, S> {
    store: S,
    max_attempts: u32,
    cache: Option<Arc<Cache<A>>>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    /// A handle on the same store and the same cache.
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            max_attempts: self.max_attempts,
            cache: self.cache.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A, S: std::fmt::Debug> std::fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &std::any::type_name::<A>())
            .field("store", &self.store)
            .field("max_attempts", &self.max_attempts)
            .field("cache", &self.cache.as_ref().map(|c| c.capacity))
            .finish()
    }
}

/// How many times `execute` tries a command before giving up on a contended stream.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 64;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository over `store`, retrying conflicting commands up to
    /// [`DEFAULT_MAX_ATTEMPTS`] times.
    pub fn new(store: S) -> Self {
        Self {
            store,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            cache: None,
            _aggregate: PhantomData,
        }
    }

    /// Keeps the state of up to about `capacity` recently used aggregates in memory, so
    /// that `execute` on a cached aggregate decides at once and appends: one round trip.
    ///
    /// The cache is never trusted: the append still expects the cached version, and when
    /// another writer (another process, or a repository without this cache) got there
    /// first, only the events after the cached version are read before deciding again.
    /// A command holds its aggregate's entry while it runs; a concurrent command on the
    /// same aggregate loads from the store as without a cache. Clones of the repository
    /// share the cache. `load` and the temporal queries do not use it.
    ///
    /// ```
    /// # use annals::prelude::*;
    /// # use annals::MemoryStore;
    /// # #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    /// # struct Incremented { by: u32 }
    /// # struct Increment(u32);
    /// # #[derive(Default)]
    /// # struct Counter { value: u32 }
    /// # #[aggregate]
    /// # impl Counter {
    /// #     #[command]
    /// #     fn increment(&self, cmd: &Increment) -> Incremented { Incremented { by: cmd.0 } }
    /// #     #[apply]
    /// #     fn incremented(&mut self, e: &Incremented) { self.value += e.by }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let counters = Repository::<Counter, _>::new(store.clone()).with_cache(10_000);
    /// counters.execute("c1", Increment(2)).await?; // loads, decides, appends, caches
    /// counters.execute("c1", Increment(3)).await?; // decides on the cached state
    ///
    /// // Another writer appends behind the cache's back: the next command's append
    /// // conflicts, reads only the new event and decides again.
    /// Repository::<Counter, _>::new(store).execute("c1", Increment(10)).await?;
    /// let done = counters.execute("c1", Increment(1)).await?;
    /// assert_eq!((done.stream_version, done.attempts), (4, 2));
    /// assert_eq!(counters.load("c1").await?.value, 16);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| Arc::new(Cache::new(capacity)));
        self
    }

    /// Sets how many times a command is tried when concurrent appends conflict (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Loads the current state of aggregate `id` (the default state if it has no events).
    ///
    /// With `snapshot_every = N`, starts from the stream's snapshot when it is usable, and
    /// writes a new one (off the caller's path) when the state is N or more events past it.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, Error> {
        let stream = A::stream_id(id);
        let (loaded, base) = load_in(&mut SharedSession(&self.store), &stream, u64::MAX).await?;
        if snapshot_due::<A>(loaded.version, base) {
            self.snapshot_later(&stream, &loaded.state, loaded.version);
        }
        Ok(loaded)
    }

    /// Loads the state as it was right after stream version `version` (0 is the empty state).
    ///
    /// Uses the snapshot only when it is not newer than `version`.
    pub async fn load_at_version(&self, id: &str, version: u64) -> Result<Loaded<A>, Error> {
        let stream = A::stream_id(id);
        let (loaded, _) = load_in(&mut SharedSession(&self.store), &stream, version).await?;
        if loaded.version < version {
            return Err(Error::VersionNotFound {
                stream,
                requested: version,
                current: loaded.version,
            });
        }
        Ok(loaded)
    }

    /// Loads the state as it was at `time`: every event recorded at or before it.
    ///
    /// Uses the snapshot only when the event after it was recorded at or before `time`
    /// (recording times grow with the version), so the snapshot is not newer than `time`.
    pub async fn load_as_of(&self, id: &str, time: DateTime<Utc>) -> Result<Loaded<A>, Error> {
        let stream = A::stream_id(id);
        let mut read = if A::SNAPSHOT_EVERY.is_some() {
            self.store
                .read_from_snapshot(&stream, A::SNAPSHOT_FINGERPRINT, u64::MAX)
                .await?
        } else {
            SnapshotRead {
                snapshot: None,
                events: self.store.read_stream(&stream, ..).await?,
            }
        };
        // Without a snapshot the read holds the whole stream: no second read is needed.
        let usable =
            read.snapshot.is_none() || read.events.first().is_some_and(|e| e.recorded_at <= time);
        if usable {
            read.events
                .truncate(read.events.partition_point(|r| r.recorded_at <= time));
            if let Some((loaded, _)) = resume::<A>(&stream, read)? {
                return Ok(loaded);
            }
        }
        // The snapshot is newer than `time`, or does not decode: replay from the start.
        let records = self.store.read_stream(&stream, ..).await?;
        let upto = records.partition_point(|r| r.recorded_at <= time);
        fold(Loaded::default(), &records[..upto])
    }

    /// The aggregate's audit trail: every event, decoded, with its full record.
    pub async fn history(&self, id: &str) -> Result<Vec<Envelope<A::Event>>, Error> {
        let stream = A::stream_id(id);
        let records = self.store.read_stream(&stream, ..).await?;
        records
            .into_iter()
            .map(|record| {
                Ok(Envelope {
                    event: record.decode()?,
                    record,
                })
            })
            .collect()
    }

    /// Runs `command` against aggregate `id` in a new conversation.
    ///
    /// See [`execute_with`](Self::execute_with).
    pub async fn execute<C>(
        &self,
        id: &str,
        command: C,
    ) -> Result<Executed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Send + Sync,
    {
        self.execute_with(id, command, &CommandContext::new()).await
    }

    /// Runs `command` against aggregate `id`: load, decide, append with the loaded version
    /// as the expected version. When another writer appended in between, reloads and
    /// decides again, up to the configured number of attempts, with jittered backoff.
    pub async fn execute_with<C>(
        &self,
        id: &str,
        command: C,
        ctx: &CommandContext,
    ) -> Result<Executed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Send + Sync,
    {
        let stream = A::stream_id(id);
        let span = tracing::debug_span!(
            "annals.execute",
            stream = %stream,
            command = std::any::type_name::<C>(),
            correlation_id = %ctx.correlation_id(),
        );
        async {
            // One connection for the whole command, retries included.
            let mut session = self.store.session().await.map_err(Error::from)?;
            let mut current = self.cache.as_ref().and_then(|cache| cache.take(&stream));
            // A creating command on an aggregate not in the cache bets that the stream is
            // new: it decides against the default state and appends expecting no stream,
            // skipping the read. Anything else the bet gives (a rejection, no events, a
            // conflict) says nothing about the real state, so that state is loaded and
            // the command decides again; the bet is not an attempt.
            let mut guess = <A as Handle<C>>::CREATES && current.is_none();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let entry = match current.take() {
                    Some(entry) => entry,
                    None if guess => Entry {
                        state: A::default(),
                        version: 0,
                        base: 0,
                    },
                    None => {
                        let (loaded, base) =
                            load_in::<A, _>(&mut session, &stream, u64::MAX).await?;
                        Entry {
                            state: loaded.state,
                            version: loaded.version,
                            base,
                        }
                    }
                };
                let decided = entry.state.handle(&command).await;
                if guess && !matches!(&decided, Ok(events) if !events.is_empty()) {
                    (guess, attempt) = (false, 0);
                    continue;
                }
                let events = match decided {
                    Ok(events) => events,
                    Err(rejection) => {
                        self.cache_put(&stream, entry);
                        return Err(ExecuteError::Rejected(rejection));
                    }
                };
                if events.is_empty() {
                    let stream_version = entry.version;
                    self.cache_put(&stream, entry);
                    return Ok(Executed {
                        events,
                        stream_version,
                        last_position: None,
                        attempts: attempt,
                    });
                }
                let batch = encode(&stream, &events, ctx)?;
                let expected = ExpectedVersion::Exact(entry.version);
                match session.append(&stream, expected, batch).await {
                    Ok(done) => {
                        tracing::debug!(version = done.stream_version, attempt, "command recorded");
                        let Entry {
                            mut state,
                            version,
                            mut base,
                        } = entry;
                        for event in &events {
                            state.apply(event);
                        }
                        // Every multiple of N gets its snapshot, however late the previous
                        // one lands; a stale or unusable one is replaced too.
                        let due = snapshot_due::<A>(done.stream_version, base)
                            || crosses_multiple::<A>(version, done.stream_version);
                        if due && !done.already_stored {
                            self.snapshot_later(&stream, &state, done.stream_version);
                            base = done.stream_version;
                        }
                        if !done.already_stored {
                            let version = done.stream_version;
                            self.cache_put(
                                &stream,
                                Entry {
                                    state,
                                    version,
                                    base,
                                },
                            );
                        }
                        return Ok(Executed {
                            events,
                            stream_version: done.stream_version,
                            last_position: Some(done.last_position),
                            attempts: attempt,
                        });
                    }
                    Err(StoreError::WrongExpectedVersion { actual, .. }) if guess => {
                        tracing::debug!(actual, "the stream a creating command bet was new exists");
                        (guess, attempt) = (false, 0);
                    }
                    Err(StoreError::WrongExpectedVersion { actual, .. })
                        if attempt < self.max_attempts =>
                    {
                        tracing::debug!(
                            expected = entry.version,
                            actual,
                            attempt,
                            "conflict, retrying"
                        );
                        // Read only what the state missed, then decide again: at once the
                        // first time (a stale cache entry, or one lost race), with a
                        // growing random pause when writers keep colliding.
                        if attempt > 1 {
                            backoff(attempt).await;
                        }
                        current = catch_up(&mut session, &stream, entry).await?;
                    }
                    Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                        return Err(Error::RetriesExhausted {
                            stream,
                            attempts: attempt,
                            actual,
                        }
                        .into());
                    }
                    Err(e) => return Err(Error::Store(e).into()),
                }
            }
        }
        .instrument(span)
        .await
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    fn cache_put(&self, stream: &str, entry: Entry<A>) {
        if let Some(cache) = &self.cache {
            cache.put(stream, entry);
        }
    }

    /// Writes a snapshot of `state` at `version` in a task of its own: the caller does not
    /// wait for it, and a failure is logged, never returned (guarantee 6).
    fn snapshot_later(&self, stream: &str, state: &A, version: u64) {
        let state = match state.encode_snapshot() {
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(stream, version, %error, "cannot serialise snapshot; none taken");
                return;
            }
            None => return,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let record = SnapshotRecord {
            stream_id: stream.to_owned(),
            version,
            fingerprint: A::SNAPSHOT_FINGERPRINT,
            state,
            taken_at: Utc::now(),
        };
        let store = self.store.clone();
        runtime.spawn(
            async move {
                match store.write_snapshot(record).await {
                    Ok(()) => tracing::debug!("snapshot written"),
                    Err(error) => tracing::warn!(%error, "cannot write snapshot; loads replay more events until the next one"),
                }
            }
            .instrument(tracing::debug_span!("annals.snapshot", stream = %stream, version)),
        );
    }
}

/// A state at a stream version, between commands or during one.
struct Entry<A> {
    state: A,
    version: u64,
    /// The version of the snapshot the state descends from (0: none).
    base: u64,
}

/// Recently used aggregates: two generations of up to `capacity / 2` entries each. New and
/// used entries go to the young one; when it is full it becomes the old one and the old
/// one is dropped. An approximate LRU with O(1) operations and no per-entry bookkeeping.
struct Cache<A> {
    capacity: usize,
    generations: Mutex<[HashMap<String, Entry<A>>; 2]>,
}

impl<A> Cache<A> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }

    /// Removes and returns the entry: the command owns it until it puts it back.
    fn take(&self, stream: &str) -> Option<Entry<A>> {
        // A panic elsewhere cannot leave an entry half-written: entries move whole.
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let [young, old] = &mut *generations;
        young.remove(stream).or_else(|| old.remove(stream))
    }

    fn put(&self, stream: &str, entry: Entry<A>) {
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let [young, old] = &mut *generations;
        if young.len() >= self.capacity.div_ceil(2) && !young.contains_key(stream) {
            *old = std::mem::take(young);
        }
        old.remove(stream);
        young.insert(stream.to_owned(), entry);
    }
}

/// Brings `entry` up to date with the events appended after its version. `None` when they
/// do not follow on (the caller reloads the stream).
async fn catch_up<A: Aggregate, T: StoreSession>(
    session: &mut T,
    stream: &str,
    mut entry: Entry<A>,
) -> Result<Option<Entry<A>>, Error> {
    let mut follows = true;
    session
        .fold_stream(stream, VersionRange::new(entry.version + 1..), |event| {
            follows &= event.stream_version == entry.version + 1;
            if follows {
                apply_stored(&mut entry.state, &mut entry.version, event)?;
            }
            Ok::<_, Error>(())
        })
        .await?;
    Ok(follows.then_some(entry))
}

/// Whether a state at `version`, loaded from a snapshot at `base` (0: none), deserves a
/// new snapshot: N or more events past the one it came from.
fn snapshot_due<A: Aggregate>(version: u64, base: u64) -> bool {
    A::SNAPSHOT_EVERY.is_some_and(|every| version >= base.saturating_add(every))
}

/// Whether an append from version `from` to `to` reaches a multiple of N.
fn crosses_multiple<A: Aggregate>(from: u64, to: u64) -> bool {
    A::SNAPSHOT_EVERY.is_some_and(|every| from / every < to / every)
}

/// Loads the state up to version `to`, from the snapshot when the aggregate takes them and
/// it is usable, by full replay otherwise. Also returns the snapshot's version (0: none).
async fn load_in<A: Aggregate, T: StoreSession>(
    session: &mut T,
    stream: &str,
    to: u64,
) -> Result<(Loaded<A>, u64), Error> {
    if A::SNAPSHOT_EVERY.is_some() {
        let read = session
            .read_from_snapshot(stream, A::SNAPSHOT_FINGERPRINT, to)
            .await?;
        if let Some(loaded) = resume::<A>(stream, read)? {
            return Ok(loaded);
        }
    }
    let mut loaded = Loaded::<A>::default();
    session
        .fold_stream(stream, VersionRange::new(..=to), |event| {
            apply_stored(&mut loaded.state, &mut loaded.version, event)
        })
        .await?;
    Ok((loaded, 0))
}

/// Folds what `read_from_snapshot` returned. `None` when the snapshot cannot be used (it
/// does not decode, or the events do not follow it): the caller replays the whole stream.
fn resume<A: Aggregate>(
    stream: &str,
    read: SnapshotRead,
) -> Result<Option<(Loaded<A>, u64)>, Error> {
    let Some(snapshot) = read.snapshot else {
        return Ok(Some((fold(Loaded::default(), &read.events)?, 0)));
    };
    let version = snapshot.version;
    if read
        .events
        .first()
        .is_some_and(|e| e.stream_version != version + 1)
    {
        tracing::warn!(
            stream,
            version,
            "events do not follow the snapshot; replaying the stream"
        );
        return Ok(None);
    }
    match A::decode_snapshot(&snapshot.state) {
        Some(Ok(state)) => {
            let loaded = fold(Loaded { state, version }, &read.events)?;
            Ok(Some((loaded, version)))
        }
        Some(Err(error)) => {
            tracing::warn!(stream, version, %error, "snapshot does not decode; replaying the stream");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Applies `records` on top of `loaded`.
fn fold<A: Aggregate>(
    mut loaded: Loaded<A>,
    records: &[RecordedEvent],
) -> Result<Loaded<A>, Error> {
    for record in records {
        let Loaded { state, version } = &mut loaded;
        apply_stored(state, version, StoredEvent::of(record))?;
    }
    Ok(loaded)
}

/// Decodes one stored event and applies it: every load path goes through here.
fn apply_stored<A: Aggregate>(
    state: &mut A,
    version: &mut u64,
    event: StoredEvent<'_>,
) -> Result<(), Error> {
    let decoded = event.decode::<A::Event>()?;
    state.apply(&decoded);
    *version = event.stream_version;
    Ok(())
}

fn encode<E: EventSet>(
    stream: &str,
    events: &[E],
    ctx: &CommandContext,
) -> Result<Vec<NewEvent>, Error> {
    events
        .iter()
        .map(|event| {
            NewEvent::from_set(event)
                .map(|e| e.with_metadata(ctx.metadata.clone()))
                .map_err(|source| Error::Encode {
                    stream: stream.to_owned(),
                    name: event.event_name(),
                    source,
                })
        })
        .collect()
}

/// Sleeps a random time that grows with the attempt, so contending writers spread out
/// instead of colliding again in lockstep.
async fn backoff(attempt: u32) {
    let ceiling_us = 100u64 << attempt.min(7);
    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=ceiling_us))).await;
}
