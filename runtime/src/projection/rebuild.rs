//! Rebuilds of document projections: a new generation built beside the live one, whole
//! or by one task per part of a sharded projection, that takes over once caught up.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::describe::Described;
use super::letter::Tries;
use super::runner::Runner;
use super::worker::{Job, Read, Worker};
use super::{DocumentProjection, ProjectionError, ProjectionStore, Shard, Slot};
use crate::event::Checkpoint;
use crate::store::StoreError;

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

impl<S: ProjectionStore> Runner<S> {
    /// Rebuilds projection `P` from the first event: into a new generation beside the
    /// live one, which readers keep seeing (and a running runner keeps following) until
    /// the new one has caught up; then the new one takes its place in one transaction and
    /// the old one is dropped. Readers never see an empty or half-built read model.
    /// `progress` hears of every batch; so does `tracing`, at `info`. A sharded projection
    /// (`#[projection(shards = N)]`, on a store that keeps shards) is rebuilt by one task
    /// per part at once, and takes over when every part has caught up.
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
        let (live, _) = self
            .store
            .open_projection(P::NAME, P::VERSION)
            .await
            .map_err(error)?;
        if live.inline {
            return Err(ProjectionError::Inline {
                projection: P::NAME.to_owned(),
            });
        }
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
        let mut report = RebuildProgress {
            generation: slot.generation,
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
        let mut reporter = Reporter {
            start: tokio::time::Instant::now(),
            report: &mut report,
            progress: &mut progress,
            name: P::NAME,
        };
        let parts = self.parts(&Job::<S>::Documents(described));
        if parts.len() > 1 {
            self.rebuild_parts(described, &slot, &parts, &mut reporter)
                .await?;
        } else {
            self.rebuild_whole(described, slot, &mut reporter).await?;
        }
        tracing::info!(
            projection = P::NAME,
            generation = report.generation,
            events = report.done,
            "rebuild took over"
        );
        Ok(report)
    }

    /// A projection in one piece: batches until caught up, then the takeover, unless the
    /// live generation has gone further meanwhile; then it catches up again.
    async fn rebuild_whole(
        &self,
        described: Described,
        slot: Slot,
        reporter: &mut Reporter<'_>,
    ) -> Result<(), ProjectionError> {
        let mut worker = self.rebuilder(described, slot, Checkpoint::START);
        let mut tries = Tries::default();
        loop {
            let read = worker.step_now(&mut tries).await?;
            reporter.read(read as u64, worker.checkpoint);
            if read == self.options.batch_size {
                // A long rebuild lets the other tasks of its thread run between batches.
                tokio::task::yield_now().await;
                continue;
            }
            let promoted = self
                .store
                .promote(&worker.slot, worker.checkpoint)
                .await
                .map_err(|e| ProjectionError::store(described.name, e))?;
            if promoted {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A sharded projection: the log read and decoded once, by one task, and each part's
    /// share applied and committed by a task of its own, with the part's checkpoint; the
    /// takeover when every part has caught up and none is behind the live one's. A part
    /// whose handler fails, and every round after the first (when the live generation went
    /// further meanwhile), reads for itself.
    async fn rebuild_parts(
        &self,
        described: Described,
        slot: &Slot,
        parts: &[Shard],
        reporter: &mut Reporter<'_>,
    ) -> Result<(), ProjectionError> {
        let error = |e| ProjectionError::store(described.name, e);
        let mut first = None;
        let mut shared = true;
        loop {
            let (sent, mut reads) = mpsc::unbounded_channel::<(u64, Checkpoint)>();
            let mut tasks = JoinSet::new();
            let mut shares = Vec::with_capacity(parts.len());
            for &shard in parts {
                let (part, checkpoint) = self.store.open_shard(slot, shard).await.map_err(error)?;
                first.get_or_insert_with(|| part.clone());
                let mut worker = self.rebuilder(described, part, checkpoint);
                let (share, mut batches) = mpsc::channel::<Read>(2);
                shares.push(Some(share));
                let (sent, batch, alone) = (sent.clone(), self.options.batch_size, !shared);
                tasks.spawn(async move {
                    let mut tries = Tries::default();
                    if !alone {
                        while let Some(read) = batches.recv().await {
                            if worker.apply_share(described, read).await.is_err() {
                                // Tried again below, reading for itself, as a part alone.
                                break;
                            }
                        }
                        drop(batches);
                    }
                    loop {
                        let read = worker.step_now(&mut tries).await?;
                        if alone {
                            let _ = sent.send((read as u64, worker.checkpoint));
                        }
                        if read < batch {
                            return Ok::<_, ProjectionError>(());
                        }
                        tokio::task::yield_now().await;
                    }
                });
            }
            drop(sent);
            if shared {
                shared = false;
                let whole = Slot {
                    shard: Shard::WHOLE,
                    ..slot.clone()
                };
                let mut reader = self.rebuilder(described, whole, Checkpoint::START);
                loop {
                    let split = reader.read_split(described, parts).await?;
                    reporter.read(split.read as u64, reader.checkpoint);
                    for (share, read) in shares.iter_mut().zip(split.parts) {
                        // A part that failed reads for itself from where it is.
                        if share.as_ref().is_some_and(|s| s.is_closed()) {
                            *share = None;
                        }
                        if let Some(share) = share {
                            let _ = share.send(read).await;
                        }
                    }
                    if split.stopped || split.read < self.options.batch_size {
                        break;
                    }
                }
                shares.clear();
            }
            while let Some((read, checkpoint)) = reads.recv().await {
                reporter.read(read / parts.len() as u64, checkpoint);
            }
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(|panic| {
                    error(StoreError::backend(std::io::Error::other(format!(
                        "a rebuild task ended: {panic}"
                    ))))
                })??;
            }
            let Some(part) = &first else {
                return Ok(());
            };
            if self
                .store
                .promote(part, Checkpoint::START)
                .await
                .map_err(error)?
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A worker that builds `slot` from `checkpoint`, reading every event to count its
    /// progress.
    fn rebuilder(&self, described: Described, slot: Slot, checkpoint: Checkpoint) -> Worker<S> {
        Worker {
            store: self.store.clone(),
            job: Job::Documents(described),
            options: self.options,
            names: Job::<S>::Documents(described).names(),
            slot,
            checkpoint,
            filtered: false,
            poison: None,
            takes_over: false,
            marked: false,
        }
    }
}

/// Progress told to the caller's callback and to `tracing`.
struct Reporter<'a> {
    start: tokio::time::Instant,
    report: &'a mut RebuildProgress,
    progress: &'a mut dyn FnMut(&RebuildProgress),
    name: &'static str,
}

impl Reporter<'_> {
    fn read(&mut self, events: u64, checkpoint: Checkpoint) {
        let report = &mut *self.report;
        report.done += events;
        report.total = report.total.max(report.done);
        report.checkpoint = report.checkpoint.max(checkpoint);
        let seconds = self.start.elapsed().as_secs_f64();
        report.events_per_second = if seconds > 0.0 {
            report.done as f64 / seconds
        } else {
            0.0
        };
        (self.progress)(report);
        tracing::info!(
            projection = self.name,
            done = report.done,
            total = report.total,
            events_per_second = report.events_per_second as u64,
            "rebuilding"
        );
    }
}
