//! The async runner: each projection catches up from its checkpoint, then follows the log,
//! committing every batch's documents with its checkpoint in one transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::describe::{Described, Erased, registered};
use super::progress::{self, Status};
use super::{Change, DocumentProjection, ProjectionError, ProjectionStore, Slot};
use crate::event::{Checkpoint, DecodeError, StoredEvent};
use crate::store::StoreError;

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
    /// How long a projection that failed waits before trying its batch again.
    pub retry_interval: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 4096,
            poll_interval: Duration::from_millis(250),
            retry_interval: Duration::from_secs(1),
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

    /// Sets the wait before a failed batch is tried again.
    #[must_use]
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
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
    store: S,
    projections: Vec<Described>,
    options: RunnerOptions,
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
        self.add(Described::of::<P>());
        self
    }

    /// Adds every projection of the program (each `#[projection]` registers itself).
    #[must_use]
    pub fn all(mut self) -> Self {
        for described in registered() {
            self.add(described);
        }
        self
    }

    /// Sets how the runner reads and waits.
    #[must_use]
    pub fn options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    fn add(&mut self, described: Described) {
        let id = (described.name, described.version);
        if self.store.inline_projections().contains(&id) {
            tracing::debug!(
                projection = described.name,
                "applied inline by the store; the runner leaves it"
            );
            return;
        }
        let same = |d: &Described| (d.name, d.version) == id;
        if !self.projections.iter().any(same) {
            self.projections.push(described);
        }
    }

    /// Brings every projection up to the events readable now, then returns: for tests,
    /// scripts and rebuilds that need no live runner.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        for described in &self.projections {
            let mut worker = Worker::open(self.store.clone(), *described, self.options).await?;
            while worker.step().await? == self.options.batch_size {}
        }
        Ok(())
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
            for described in &self.projections {
                let (_, reached) = self
                    .store
                    .open_projection(described.name, described.version)
                    .await
                    .map_err(|e| ProjectionError::store(described.name, e))?;
                if reached < checkpoint {
                    behind = Some((described.name, reached));
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

    /// Rebuilds projection `P` from the first event: into a new generation beside the
    /// live one, which readers keep seeing (and a running runner keeps following) until
    /// the new one has caught up; then the new one takes its place in one transaction and
    /// the old one is dropped. Readers never see an empty or half-built read model.
    /// `progress` hears of every batch; so does `tracing`, at `info`.
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
    /// store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged)?]).await?;
    /// let runner = Runner::new(store.clone()).with::<Pings>();
    /// let done = runner.rebuild::<Pings>(|progress| println!("{} of {}", progress.done, progress.total)).await?;
    /// assert_eq!((done.done, done.generation), (1, 2));
    /// # Ok(()) }
    /// ```
    pub async fn rebuild<P: DocumentProjection>(
        &self,
        mut progress: impl FnMut(&RebuildProgress),
    ) -> Result<RebuildProgress, ProjectionError> {
        let described = Described::of::<P>();
        let error = |e| ProjectionError::store(P::NAME, e);
        let slot = self
            .store
            .begin_rebuild(P::NAME, P::VERSION)
            .await
            .map_err(error)?;
        tracing::info!(
            projection = P::NAME,
            generation = slot.generation,
            "rebuild started"
        );
        let mut worker = Worker {
            store: self.store.clone(),
            described,
            options: self.options,
            slot,
            checkpoint: Checkpoint::START,
        };
        let start = tokio::time::Instant::now();
        let mut report = RebuildProgress {
            generation: worker.slot.generation,
            done: 0,
            total: self
                .store
                .log_after(Checkpoint::START)
                .await
                .map_err(error)?
                .events,
            events_per_second: 0.0,
            checkpoint: Checkpoint::START,
        };
        loop {
            let read = worker.step().await?;
            report.done += read as u64;
            report.total = report.total.max(report.done);
            report.checkpoint = worker.checkpoint;
            let seconds = start.elapsed().as_secs_f64();
            report.events_per_second = if seconds > 0.0 {
                report.done as f64 / seconds
            } else {
                0.0
            };
            progress(&report);
            tracing::info!(
                projection = P::NAME,
                done = report.done,
                total = report.total,
                events_per_second = report.events_per_second as u64,
                "rebuilding"
            );
            if read == self.options.batch_size {
                continue;
            }
            // Caught up with what is readable: take over, unless the live generation
            // has gone further meanwhile; then catch up again.
            if self
                .store
                .promote(&worker.slot, worker.checkpoint)
                .await
                .map_err(error)?
            {
                tracing::info!(
                    projection = P::NAME,
                    generation = worker.slot.generation,
                    events = report.done,
                    "rebuild took over"
                );
                return Ok(report);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Where each projection is, against the log's head.
    pub async fn status(&self) -> Result<Vec<Status>, ProjectionError> {
        let mut all = Vec::with_capacity(self.projections.len());
        for described in &self.projections {
            all.push(progress::status(&self.store, described.name, described.version).await?);
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
        let tasks = self
            .projections
            .iter()
            .map(|described| {
                tokio::spawn(follow(
                    self.store.clone(),
                    *described,
                    self.options,
                    stopped.clone(),
                    Arc::clone(&failures),
                ))
            })
            .collect();
        RunnerHandle {
            runner: self,
            stop,
            tasks,
            failures,
        }
    }
}

/// How far a [`Runner::rebuild`] has come.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RebuildProgress {
    /// The generation being built.
    pub generation: u32,
    /// Events read so far.
    pub done: u64,
    /// Events to read: the log's size when the rebuild began, or more if it grew.
    pub total: u64,
    /// Events read per second since the rebuild began.
    pub events_per_second: f64,
    /// The last event read.
    pub checkpoint: Checkpoint,
}

/// A started [`Runner`]: its projections follow the log until this is shut down (or
/// dropped, which stops them at once).
#[derive(Debug)]
pub struct RunnerHandle<S> {
    runner: Runner<S>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), ProjectionError>>>,
    failures: Arc<Mutex<HashMap<&'static str, String>>>,
}

impl<S: ProjectionStore> RunnerHandle<S> {
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
        for described in &self.runner.projections {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            progress::wait_for(
                &self.runner.store,
                described.name,
                described.version,
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
            status.failure = failures.get(status.name.as_str()).cloned();
        }
        Ok(all)
    }

    /// Stops every projection after the batch it is working on (which commits or is
    /// abandoned whole), and returns the first error that stopped one for good.
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

/// One projection's task: batches while behind, then a wait for the next append.
async fn follow<S: ProjectionStore>(
    store: S,
    described: Described,
    options: RunnerOptions,
    mut stopped: watch::Receiver<bool>,
    failures: Arc<Mutex<HashMap<&'static str, String>>>,
) -> Result<(), ProjectionError> {
    let mut signal = store.append_signal();
    let mut worker = None;
    let report = |failure: Option<String>| {
        let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            Some(text) => failures.insert(described.name, text),
            None => failures.remove(described.name),
        };
    };
    loop {
        if *stopped.borrow() {
            return Ok(());
        }
        // Marked seen before reading: an append during the read wakes the wait below.
        if let Some(signal) = &mut signal {
            signal.borrow_and_update();
        }
        let step = async {
            let worker = match &mut worker {
                Some(worker) => worker,
                None => worker.insert(Worker::open(store.clone(), described, options).await?),
            };
            worker.step().await
        };
        let wait = match step.await {
            Ok(read) if read == options.batch_size => continue,
            Ok(_) => {
                report(None);
                options.poll_interval
            }
            Err(error @ ProjectionError::Fenced { .. }) => {
                // Another runner committed past this one, or a rebuild took over: nothing
                // of the batch was written. Read the live generation and its checkpoint again.
                tracing::warn!(projection = described.name, %error, "projection checkpoint moved under this runner; reopening");
                worker = None;
                continue;
            }
            Err(error) => {
                tracing::error!(projection = described.name, %error, "projection batch failed; retrying");
                report(Some(error.to_string()));
                // Reopened after a failure: the checkpoint is read again from the store.
                worker = None;
                options.retry_interval
            }
        };
        let appended = async {
            match &mut signal {
                Some(receiver) => receiver.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            open = appended => {
                if !open {
                    signal = None;
                }
            }
            _ = stopped.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Why a read stopped early.
enum Stop {
    Store(StoreError),
    Decode(DecodeError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// An event the projection handles, decoded, with where it is.
struct Item {
    checkpoint: Checkpoint,
    /// How many events (handled or not) the read had seen up to and including this one.
    ordinal: usize,
    key: String,
    event: Erased,
    stream: String,
    stream_version: u64,
    name: String,
}

/// What one read found.
struct Read {
    items: Vec<Item>,
    /// The checkpoint of the last event read.
    last: Checkpoint,
    /// How many events were read, handled or not.
    seen: usize,
    stop: Option<Stop>,
}

/// One projection's position and the work of one batch.
struct Worker<S> {
    store: S,
    described: Described,
    options: RunnerOptions,
    slot: Slot,
    checkpoint: Checkpoint,
}

impl<S: ProjectionStore> Worker<S> {
    async fn open(
        store: S,
        described: Described,
        options: RunnerOptions,
    ) -> Result<Self, ProjectionError> {
        let (slot, checkpoint) = store
            .open_projection(described.name, described.version)
            .await
            .map_err(|e| ProjectionError::store(described.name, e))?;
        Ok(Self {
            store,
            described,
            options,
            slot,
            checkpoint,
        })
    }

    fn store_error(&self, error: StoreError) -> ProjectionError {
        ProjectionError::store(self.described.name, error)
    }

    /// Reads, applies and commits one batch; returns how many events it read. An event
    /// that does not decode, or whose handler fails, ends the batch before it: what came
    /// before commits, and the error is returned.
    async fn step(&mut self) -> Result<usize, ProjectionError> {
        let span = tracing::debug_span!("projection batch", projection = self.described.name, from = %self.checkpoint);
        self.batch().instrument(span).await
    }

    async fn batch(&mut self) -> Result<usize, ProjectionError> {
        let read = self.read(self.options.batch_size).await?;
        let seen = read.seen;
        match self.apply(read).await? {
            None => Ok(seen),
            Some(failed) => {
                // Handlers may have changed documents before one failed: those changes are
                // thrown away, and the events before the failed one are applied again.
                let mut before = self.read(failed.ordinal - 1).await?;
                before.stop = None;
                if let Some(again) = self.apply(before).await? {
                    return Err(again.error);
                }
                Err(failed.error)
            }
        }
    }

    /// Reads up to `limit` events after the checkpoint and routes those the projection
    /// handles.
    async fn read(&self, limit: usize) -> Result<Read, ProjectionError> {
        let route = self.described.route;
        let mut read = Read {
            items: Vec::new(),
            last: self.checkpoint,
            seen: 0,
            stop: None,
        };
        if limit == 0 {
            return Ok(read);
        }
        let mut take = |checkpoint: Checkpoint, event: &StoredEvent<'_>| -> Result<(), Stop> {
            match route(event) {
                None => {}
                Some(Ok((key, decoded))) => read.items.push(Item {
                    checkpoint,
                    ordinal: read.seen + 1,
                    key,
                    event: decoded,
                    stream: event.stream_id.to_owned(),
                    stream_version: event.stream_version,
                    name: event.name.to_owned(),
                }),
                Some(Err(error)) => return Err(Stop::Decode(error)),
            }
            read.seen += 1;
            read.last = checkpoint;
            Ok(())
        };
        let outcome = if self.described.reads_metadata {
            match self.store.read_all(self.checkpoint, limit).await {
                Ok(records) => records
                    .iter()
                    .try_for_each(|record| take(record.checkpoint(), &StoredEvent::of(record))),
                Err(error) => Err(Stop::Store(error)),
            }
        } else {
            self.store
                .fold_all(self.checkpoint, limit, |checkpoint, event| {
                    take(checkpoint, &event)
                })
                .await
                .map(drop)
        };
        match outcome {
            Ok(()) => {}
            // The events before a failed read's error are applied; the error comes after.
            Err(stop) => read.stop = Some(stop),
        }
        Ok(read)
    }

    /// Applies what was read and commits it with the checkpoint. Returns the failed
    /// handler's event, whose batch was not committed.
    async fn apply(&mut self, read: Read) -> Result<Option<Failed>, ProjectionError> {
        let described = self.described;
        let mut keys: Vec<String> = read.items.iter().map(|item| item.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut documents = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            let stored = self
                .store
                .load_documents(&self.slot, &keys)
                .await
                .map_err(|e| self.store_error(e))?;
            for (key, body) in stored {
                let document = (described.read_document)(&body).map_err(|source| {
                    ProjectionError::Document {
                        projection: described.name.to_owned(),
                        key: key.clone(),
                        source,
                    }
                })?;
                documents.insert(key, (document, Change::Keep));
            }
        }
        let mut touched = Vec::with_capacity(keys.len());
        for item in read.items {
            let (document, change) = documents
                .entry(item.key.clone())
                .or_insert_with(|| ((described.new_document)(), Change::Keep));
            if *change == Change::Delete {
                *document = (described.new_document)();
            }
            match (described.apply)(document, item.event) {
                Ok(now) => *change = now,
                Err(source) => {
                    return Ok(Some(Failed {
                        ordinal: item.ordinal,
                        error: ProjectionError::Handler {
                            projection: described.name.to_owned(),
                            stream: item.stream,
                            stream_version: item.stream_version,
                            position: item.checkpoint.position,
                            event: item.name,
                            source,
                        },
                    }));
                }
            }
            touched.push(item.key);
        }
        touched.sort_unstable();
        touched.dedup();
        let mut changes = Vec::with_capacity(touched.len());
        for key in touched {
            let Some((document, change)) = documents.remove(&key) else {
                continue;
            };
            let body = match change {
                Change::Delete => None,
                Change::Keep => Some(self.encode(&key, &document)?),
            };
            changes.push((key, body));
        }
        if read.last != self.checkpoint {
            let committed = self
                .store
                .commit_documents(&self.slot, self.checkpoint, read.last, changes)
                .await
                .map_err(|e| self.store_error(e))?;
            if !committed {
                return Err(ProjectionError::Fenced {
                    projection: described.name.to_owned(),
                    expected: self.checkpoint,
                });
            }
            tracing::debug!(projection = described.name, to = %read.last, events = read.seen, "batch committed");
            self.checkpoint = read.last;
        }
        match read.stop {
            None => Ok(None),
            Some(Stop::Store(error)) => Err(self.store_error(error)),
            Some(Stop::Decode(source)) => Err(ProjectionError::Decode {
                projection: described.name.to_owned(),
                source,
            }),
        }
    }

    fn encode(&self, key: &str, document: &Erased) -> Result<String, ProjectionError> {
        let written = (self.described.write_document)(document).unwrap_or_else(|| {
            Err(serde::ser::Error::custom(
                "the document is not of the projection's type",
            ))
        });
        written.map_err(|source| ProjectionError::Document {
            projection: self.described.name.to_owned(),
            key: key.to_owned(),
            source,
        })
    }
}

/// A handler that failed, and how far into the read its event was.
struct Failed {
    ordinal: usize,
    error: ProjectionError,
}
