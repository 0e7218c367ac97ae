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
    /// Of a sharded projection, how many parts this runner built (the others were built by
    /// runners that joined the rebuild); 0 for a projection in one piece.
    pub parts: u32,
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
        let parts = self.parts(&Job::<S>::Documents(described));
        // A sharded rebuild another runner started is joined, so that runners share it.
        let joined = if parts.len() > 1 {
            self.store
                .rebuilding(P::NAME, P::VERSION)
                .await
                .map_err(error)?
        } else {
            None
        };
        let slot = match joined {
            Some(slot) => {
                tracing::info!(
                    projection = P::NAME,
                    generation = slot.generation,
                    "rebuild joined"
                );
                slot
            }
            None => {
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
                slot
            }
        };
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
            parts: 0,
        };
        let mut reporter = Reporter {
            start: tokio::time::Instant::now(),
            report: &mut report,
            progress: &mut progress,
            name: P::NAME,
        };
        if parts.len() > 1 {
            reporter.report.parts = self
                .rebuild_parts(described, &slot, &parts, &mut reporter)
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
        reporter: &mut Reporter<'_, impl FnMut(&RebuildProgress)>,
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

    /// A sharded projection, shared with the runners that join it: each part is built by
    /// the runner that holds its rebuild lease (at most `max_shards` at once), and a part
    /// whose runner died is taken over. The generation takes over when every part has
    /// caught up and none is behind the live one's. Returns how many parts this runner
    /// built.
    async fn rebuild_parts(
        &self,
        described: Described,
        slot: &Slot,
        parts: &[Shard],
        reporter: &mut Reporter<'_, impl FnMut(&RebuildProgress)>,
    ) -> Result<u32, ProjectionError> {
        let error = |e| ProjectionError::store(described.name, e);
        let first = Slot {
            shard: parts[0],
            ..slot.clone()
        };
        let (mut built, mut again) = (std::collections::BTreeSet::new(), false);
        loop {
            let states = self.store.shard_states(slot).await.map_err(error)?;
            let done = |p: &Shard| {
                !again
                    && states
                        .iter()
                        .any(|&(index, caught_up)| index == p.index && caught_up)
            };
            let pending: Vec<Shard> = parts.iter().copied().filter(|p| !done(p)).collect();
            let (mut shards, lease) = self
                .store
                .rebuild_leases(slot, &pending, self.options.max_shards)
                .await
                .map_err(error)?;
            if !again && !shards.is_empty() {
                // A part whose runner finished it between the look and the lease is done.
                let now = self.store.shard_states(slot).await.map_err(error)?;
                shards.retain(|s| !now.iter().any(|&(i, caught_up)| i == s.index && caught_up));
            }
            let round = self.build_parts(described, slot, &shards, reporter).await;
            lease.release().await;
            round?;
            built.extend(shards.iter().map(|s| s.index));
            if self
                .store
                .promote(&first, Checkpoint::START)
                .await
                .map_err(error)?
            {
                return Ok(built.len() as u32);
            }
            // Every part done and still no takeover: the live generation went further;
            // each part catches up again.
            again = shards.is_empty()
                && parts.iter().all(|p| {
                    states
                        .iter()
                        .any(|&(index, caught_up)| index == p.index && caught_up)
                });
            if shards.is_empty() && !again {
                // The other parts are another runner's: wait for them, or for its leases
                // to end.
                tokio::time::sleep(self.options.poll_interval).await;
            }
        }
    }

    /// One round over `parts` (those this runner holds): the log read and decoded once,
    /// by one task, and each part's share applied and committed by a task of its own,
    /// with the part's checkpoint, when every part starts from the same place; else each
    /// reads for itself. A part whose handler fails goes on reading for itself.
    async fn build_parts(
        &self,
        described: Described,
        slot: &Slot,
        parts: &[Shard],
        reporter: &mut Reporter<'_, impl FnMut(&RebuildProgress)>,
    ) -> Result<(), ProjectionError> {
        let error = |e| ProjectionError::store(described.name, e);
        let mut opened = Vec::with_capacity(parts.len());
        for &shard in parts {
            opened.push(self.store.open_shard(slot, shard).await.map_err(error)?);
        }
        let from = opened.first().map(|(_, at)| *at);
        let shared = opened.iter().all(|(_, at)| Some(*at) == from);
        let (sent, mut reads) = mpsc::unbounded_channel::<(u64, Checkpoint)>();
        let mut tasks = JoinSet::new();
        let mut shares = Vec::with_capacity(parts.len());
        for (part, checkpoint) in opened {
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
        if let (true, Some(from)) = (shared, from) {
            let whole = Slot {
                shard: Shard::WHOLE,
                ..slot.clone()
            };
            let mut reader = self.rebuilder(described, whole, from);
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
            reporter.read(read / parts.len().max(1) as u64, checkpoint);
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|panic| {
                error(StoreError::backend(std::io::Error::other(format!(
                    "a rebuild task ended: {panic}"
                ))))
            })??;
        }
        Ok(())
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
struct Reporter<'a, F> {
    start: tokio::time::Instant,
    report: &'a mut RebuildProgress,
    progress: &'a mut F,
    name: &'static str,
}

impl<F: FnMut(&RebuildProgress)> Reporter<'_, F> {
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
