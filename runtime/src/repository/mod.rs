//! The repository: loads aggregates and executes commands against a store.

mod cache;
mod error;
mod execute;
mod load;
mod snapshot;
mod turns;

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use crate::aggregate::Aggregate;
use crate::event::Checkpoint;
use crate::store::EventStore;

use cache::Cache;
pub use error::{ExecuteError, RepositoryError};
use turns::Turns;

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
    /// Where the last event recorded is in the global order, if any: pass it to a
    /// projection runner's `wait_for` to read your writes.
    pub last_checkpoint: Option<Checkpoint>,
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
    turns: Arc<Turns>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    /// A handle on the same store and the same cache.
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            max_attempts: self.max_attempts,
            cache: self.cache.clone(),
            turns: Arc::clone(&self.turns),
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
            turns: Arc::default(),
            _aggregate: PhantomData,
        }
    }

    /// Keeps the state of up to about `capacity` recently used aggregates in memory, so
    /// that `execute` on a cached aggregate decides at once and appends: one round trip.
    ///
    /// The cache is never trusted: the append still expects the cached version, and when
    /// another writer (another process, or a repository without this cache) got there
    /// first, only the events after the cached version are read before deciding again.
    /// Commands on one aggregate take turns (see [`execute_with`](Self::execute_with)), so
    /// the next one finds the entry the previous one left. Clones of the repository share
    /// the cache. `load` and the temporal queries do not use it.
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
}
