//! The async runner: each projection catches up from its checkpoint, then follows the log,
//! committing every batch's documents with its checkpoint in one transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::describe::Described;
use super::follow::{Failures, Held, Shared, follow};
use super::letter::Tries;
use super::progress::{self, Status};
use super::worker::registered;
use super::worker::{Job, Worker};
use super::{DocumentProjection, ProjectionError, ProjectionStore, Shard};
use crate::event::Checkpoint;

/// How a [`Runner`] reads and waits.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RunnerOptions {
    /// The most events read, applied and committed as one batch. A projection that is
    /// behind reads full batches; one that follows the log takes what has arrived,
    /// often a single event.
    pub batch_size: usize,
    /// How long to wait for an append signal before reading anyway.
    pub poll_interval: Duration,
    /// How long a projection that failed waits before trying its batch again the first
    /// time; the wait doubles with each failure in a row, up to `max_retry_interval`.
    pub retry_interval: Duration,
    /// The longest wait between tries of a failing batch.
    pub max_retry_interval: Duration,
    /// For a projection declared `on_error = "dead_letter"`: how many times an event's
    /// handler is tried before the event goes to the dead letters.
    pub dead_letter_after: u32,
    /// The most dead letters a projection keeps; past it, the projection pauses.
    pub max_dead_letters: usize,
    /// The most parts of one sharded projection this runner applies at once, over its even
    /// share.
    pub max_shards: usize,
    /// How often a runner without a projection's lease asks for it again, so how soon it
    /// takes over from a runner that died; a runner that holds a lease checks it twice
    /// as often.
    pub takeover_interval: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 4096,
            poll_interval: Duration::from_millis(250),
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(60),
            dead_letter_after: 3,
            max_dead_letters: 1000,
            max_shards: usize::MAX,
            takeover_interval: Duration::from_secs(2),
        }
    }
}

impl RunnerOptions {
    /// Sets the batch size (at least 1).
    #[must_use]
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// Sets the polling fallback interval.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets how often a lease is asked for, and checked.
    #[must_use]
    pub fn takeover_interval(mut self, interval: Duration) -> Self {
        self.takeover_interval = interval;
        self
    }

    /// Sets the wait before a failed batch is tried again the first time.
    #[must_use]
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Sets how many times an event's handler is tried before the event goes to the dead
    /// letters (at least 1).
    #[must_use]
    pub fn dead_letter_after(mut self, attempts: u32) -> Self {
        self.dead_letter_after = attempts.max(1);
        self
    }

    /// Sets the most dead letters a projection keeps.
    #[must_use]
    pub fn max_dead_letters(mut self, letters: usize) -> Self {
        self.max_dead_letters = letters;
        self
    }

    /// Sets the most parts of one sharded projection this runner applies at once. Runners
    /// split a projection's parts evenly by themselves: each takes the parts divided by
    /// the runners present, rounded up, hands parts back when more runners come, and takes
    /// more when some stop or die. This caps a runner's share below that; a runner at its
    /// cap does not take over a part whose owner died, so give the runners together room
    /// for every part.
    ///
    /// ```
    /// use annals::projection::RunnerOptions;
    ///
    /// let options = RunnerOptions::default().max_shards(2);
    /// assert_eq!(options.max_shards, 2);
    /// ```
    #[must_use]
    pub fn max_shards(mut self, parts: usize) -> Self {
        self.max_shards = parts.max(1);
        self
    }

    /// Sets the longest wait between tries of a failing batch.
    #[must_use]
    pub fn max_retry_interval(mut self, interval: Duration) -> Self {
        self.max_retry_interval = interval;
        self
    }
}

/// Runs projections asynchronously against a store: catch-up from each one's checkpoint,
/// then live. A batch's document changes and its checkpoint commit in one transaction,
/// and the checkpoint is a compare-and-set on the previous one, so an event is never
/// applied twice nor skipped, even by two runners racing on one projection.
///
/// ```
/// use annals::prelude::*;
/// use annals::projection::{Documents, Runner};
/// use annals::MemoryStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged;
///
/// #[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
/// struct Pings { count: u32 }
///
/// #[projection]
/// impl Pings {
///     #[handle]
///     fn pinged(&mut self, _: &Pinged) { self.count += 1 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let running = Runner::new(store.clone()).all().start();
/// let done = store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged)?]).await?;
/// running.wait_for(done.last_checkpoint(), std::time::Duration::from_secs(5)).await?;
/// assert_eq!(Documents::<Pings, _>::new(store).get("pinger-1").await?.map(|p| p.count), Some(1));
/// running.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Runner<S> {
    pub(super) store: S,
    pub(super) projections: Vec<Job<S>>,
    pub(super) options: RunnerOptions,
}

impl<S: ProjectionStore> Runner<S> {
    /// A runner of no projection yet on `store`: add them with [`with`](Self::with) or
    /// [`all`](Self::all).
    pub fn new(store: S) -> Self {
        Self {
            store,
            projections: Vec::new(),
            options: RunnerOptions::default(),
        }
    }

    /// Adds projection `P` (unless the store applies it inline).
    #[must_use]
    pub fn with<P: DocumentProjection>(mut self) -> Self {
        self.add(Job::Documents(Described::of::<P>()));
        self
    }

    /// Adds every projection of the program (each `#[projection]` registers itself).
    #[must_use]
    pub fn all(mut self) -> Self {
        for registered in registered::<S>() {
            self.add(registered);
        }
        self
    }

    /// Adds SQL-table projection `P`, written for this store's database.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[must_use]
    pub fn with_tables<P>(mut self) -> Self
    where
        P: super::SqlProjection,
        S: super::SqlStore<Database = P::Database>,
    {
        let run: std::sync::Arc<dyn super::sql::SqlRun<S>> =
            std::sync::Arc::new(super::sql::Entry::<P>::new());
        self.add(Job::Tables(run));
        self
    }

    /// Rebuilds SQL-table projection `P`: its `#[reset]`, then every event, and its
    /// checkpoint, in one transaction, so readers see the old tables until the new ones
    /// are whole. Returns how many events it read and where it ended.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub async fn rebuild_tables<P>(&self) -> Result<(u64, Checkpoint), ProjectionError>
    where
        P: super::SqlProjection,
        S: super::SqlStore<Database = P::Database>,
    {
        use super::sql::SqlRun;
        let entry = super::sql::Entry::<P>::new();
        let (slot, _) = self
            .store
            .open_projection(P::NAME, P::VERSION)
            .await
            .map_err(|e| ProjectionError::store(P::NAME, e))?;
        SqlRun::<S>::setup(&entry, &self.store).await?;
        tracing::info!(projection = P::NAME, "rebuilding tables");
        let done =
            SqlRun::<S>::rebuild(&entry, &self.store, &slot, self.options.batch_size).await?;
        tracing::info!(projection = P::NAME, events = done.0, "tables rebuilt");
        Ok(done)
    }

    /// Sets how the runner reads and waits.
    #[must_use]
    pub fn options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    fn add(&mut self, job: Job<S>) {
        let id = (job.name(), job.version());
        if self.store.inline_projections().contains(&id) {
            tracing::debug!(
                projection = job.name(),
                "applied inline by the store; the runner leaves it"
            );
            return;
        }
        let same = |j: &Job<S>| (j.name(), j.version()) == id;
        if !self.projections.iter().any(same) {
            self.projections.push(job);
        }
    }

    /// Brings every projection up to the events readable now, then returns: for tests,
    /// scripts and rebuilds that need no live runner. A projection that fails stops
    /// before the event that failed; the others go on, and the first error is returned.
    /// One that keeps dead letters tries a failing event `dead_letter_after` times at once,
    /// without the waits of a started runner, then sets it aside and goes on.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        // Every projection goes as far as it can: one that fails does not hold the others.
        let mut first = None;
        for job in &self.projections {
            let caught_up = async {
                for shard in self.parts(job) {
                    let (store, options) = (self.store.clone(), self.options);
                    let mut worker = Worker::open(store, job.clone(), options, shard).await?;
                    let mut tries = Tries::default();
                    while worker.step_now(&mut tries).await? == self.options.batch_size {}
                }
                Ok::<_, ProjectionError>(())
            };
            if let Err(error) = caught_up.await {
                first.get_or_insert(error);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Brings every projection up to `checkpoint`, then returns: a catch-up that waits for
    /// events still hidden behind transactions that have not finished (on PostgreSQL, a
    /// reader sees only what no running transaction can still precede). Returns the first
    /// error a batch meets, or a timeout.
    pub async fn catch_up_to(
        &self,
        checkpoint: Checkpoint,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let start = tokio::time::Instant::now();
        loop {
            self.catch_up().await?;
            let mut behind = None;
            for job in &self.projections {
                let (slot, reached) = self
                    .store
                    .open_projection(job.name(), job.version())
                    .await
                    .map_err(|e| ProjectionError::store(job.name(), e))?;
                // An inline projection is never behind the log.
                if !slot.inline && reached < checkpoint {
                    behind = Some((job.name(), reached));
                    break;
                }
            }
            let Some((name, reached)) = behind else {
                return Ok(());
            };
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(ProjectionError::Timeout {
                    projection: name.to_owned(),
                    checkpoint,
                    reached,
                    waited,
                });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Where each projection is, against the log's head.
    pub async fn status(&self) -> Result<Vec<Status>, ProjectionError> {
        let mut all = Vec::with_capacity(self.projections.len());
        for job in &self.projections {
            all.push(progress::status(&self.store, job.name(), job.version()).await?);
        }
        Ok(all)
    }

    /// Starts one task per projection: catch-up, then live, until
    /// [`shutdown`](RunnerHandle::shutdown). A batch that fails (a handler error, an event
    /// that does not decode, the store down) is logged and tried again after the retry
    /// interval; nothing after it is applied before it.
    pub fn start(self) -> RunnerHandle<S> {
        let (stop, stopped) = watch::channel(false);
        let failures = Arc::new(Mutex::new(HashMap::new()));
        let held: Held = Arc::default();
        let tasks = self
            .projections
            .iter()
            .flat_map(|job| {
                let crowd = Shared::default();
                self.parts(job)
                    .into_iter()
                    .map(move |shard| (job, shard, Arc::clone(&crowd)))
            })
            .map(|(job, shard, crowd)| {
                tokio::spawn(follow(
                    self.store.clone(),
                    job.clone(),
                    self.options,
                    stopped.clone(),
                    Arc::clone(&failures),
                    (shard, Arc::clone(&held), crowd),
                ))
            })
            .collect();
        RunnerHandle {
            runner: self,
            stop,
            tasks,
            failures,
            held,
        }
    }

    /// The parts `job` runs in on this runner's store: one per shard on a store that keeps
    /// shards, else the whole projection.
    pub(super) fn parts(&self, job: &Job<S>) -> Vec<Shard> {
        let count = job.shards();
        if count > 1 && self.store.keeps_shards() {
            (0..count).map(|index| Shard { index, count }).collect()
        } else {
            vec![Shard::WHOLE]
        }
    }
}

/// A started [`Runner`]: its projections follow the log until this is shut down (or
/// dropped, which stops them at once).
#[derive(Debug)]
pub struct RunnerHandle<S> {
    runner: Runner<S>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), ProjectionError>>>,
    failures: Failures,
    held: Held,
}

impl<S: ProjectionStore> RunnerHandle<S> {
    /// The leases this runner holds now: each projection (name and version) and part it
    /// applies. On stores a single process uses, every projection it runs.
    pub fn held(&self) -> Vec<(&'static str, u32, Shard)> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|&(_, &granted)| granted)
            .map(|(&lease, _)| lease)
            .collect()
    }

    /// Waits until every projection of the runner has applied the event at `checkpoint`
    /// (read-your-writes after a command: pass `Executed::last_checkpoint`; `None`, a
    /// command that recorded nothing, returns at once). Progress is read from the store,
    /// so this holds across processes too.
    pub async fn wait_for(
        &self,
        checkpoint: impl Into<Option<Checkpoint>>,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let Some(checkpoint) = checkpoint.into() else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + timeout;
        for job in &self.runner.projections {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            progress::wait_for(
                &self.runner.store,
                job.name(),
                job.version(),
                checkpoint,
                left,
            )
            .await?;
        }
        Ok(())
    }

    /// Where each projection is, with the last failure of those that are stuck.
    pub async fn status(&self) -> Result<Vec<Status>, ProjectionError> {
        let mut all = self.runner.status().await?;
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for status in &mut all {
            let here = failures
                .iter()
                .find(|((name, version), _)| *name == status.name && *version == status.version)
                .map(|(_, failure)| failure.clone());
            if let Some(failure) = here {
                status.failure = Some(failure);
                status.state = super::State::Failed;
            }
        }
        Ok(all)
    }

    /// Stops every projection after the batch it is working on (which commits or is
    /// abandoned whole). A task that ended in a panic outside the handlers (which are
    /// caught) passes it on here.
    pub async fn shutdown(mut self) -> Result<(), ProjectionError> {
        self.stop.send_replace(true);
        let mut first = None;
        for task in self.tasks.drain(..) {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first.get_or_insert(error);
                }
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => {}
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl<S> Drop for RunnerHandle<S> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
