//! One projection's task in a started runner: hold the lease, read batches while behind,
//! wait for the next append, try a failed batch again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::letter::Tries;
use super::worker::{Job, Worker};
use super::{Lease, Presence, ProjectionError, ProjectionStore, RunnerOptions, Shard};

/// The failures of a runner's projections, by name and version, while they last.
pub(super) type Failures = Arc<Mutex<HashMap<(&'static str, u32), String>>>;

/// The leases a runner holds or is asking for (`false`): projection name, version and part.
pub(super) type Held = Arc<Mutex<std::collections::BTreeMap<(&'static str, u32, Shard), bool>>>;

/// The runners present for one sharded projection, as its part tasks in this runner see
/// them: counted now and then, shared by the tasks.
#[derive(Default)]
pub(super) struct Crowd {
    presence: Option<Presence>,
    runners: usize,
    counted: Option<tokio::time::Instant>,
}

/// A projection's [`Crowd`], shared by its part tasks.
pub(super) type Shared = Arc<tokio::sync::Mutex<Crowd>>;

/// One projection's task: batches while behind, then a wait for the next append.
pub(super) async fn follow<S: ProjectionStore>(
    store: S,
    job: Job<S>,
    options: RunnerOptions,
    mut stopped: watch::Receiver<bool>,
    failures: Failures,
    (shard, held, crowd): (Shard, Held, Shared),
) -> Result<(), ProjectionError> {
    let mut signal = store.append_signal();
    let mut worker = None;
    let mut holder = Holder {
        shard,
        held,
        crowd,
        lease: None,
        checked: None,
        waiting: false,
    };
    // Failures in a row: each doubles the wait before the next try.
    let mut failed = 0u32;
    // The tries of a failing event, for a projection that dead-letters it after enough.
    let mut tries = Tries::default();
    // Where the failure is recorded, so that a success clears it there.
    let mut recorded: Option<super::Slot> = None;
    let report = |failure: Option<String>| {
        let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            Some(text) => failures.insert((job.name(), job.version()), text),
            None => failures.remove(&(job.name(), job.version())),
        };
    };
    'run: loop {
        if *stopped.borrow() {
            break 'run;
        }
        // The lease first: of the runners on one database, one applies each projection.
        match holder.hold(&store, &job, &options).await {
            Holding::Yes { taken } => {
                if taken {
                    // Another runner may have moved the checkpoint: read it again.
                    worker = None;
                }
            }
            Holding::No(wait) => {
                worker = None;
                if wait_or_stop(&mut stopped, wait).await {
                    break 'run;
                }
                continue;
            }
        }
        // Marked seen before reading: an append during the read wakes the wait below.
        if let Some(signal) = &mut signal {
            signal.borrow_and_update();
        }
        let step = async {
            let worker = match &mut worker {
                Some(worker) => worker,
                None => {
                    let mut opened =
                        Worker::open(store.clone(), job.clone(), options, shard).await?;
                    if job.dead_letters() {
                        opened.poison = tries.poison(job.tries(&options));
                    }
                    // A failure recorded before (by this runner or another, maybe one that
                    // stopped on it) is cleared by the next batch that goes through.
                    if recorded.is_none() {
                        let known = store
                            .projection_state(job.name(), job.version())
                            .await
                            .map_err(|e| ProjectionError::store(job.name(), e))?;
                        if known.failure.is_some() {
                            recorded = Some(opened.slot.clone());
                        }
                    }
                    worker.insert(opened)
                }
            };
            if worker.slot.inline {
                return Ok(None);
            }
            worker.step().await.map(Some)
        };
        let wait = match step.await {
            Ok(None) => {
                tracing::info!(
                    projection = job.name(),
                    "applied inline by the stores that append; this runner leaves it"
                );
                break 'run;
            }
            Ok(Some(read)) if read == options.batch_size => {
                report(None);
                failed = 0;
                tries.succeeded();
                clear(&store, &mut recorded).await;
                tokio::task::yield_now().await;
                continue;
            }
            Ok(Some(_)) => {
                report(None);
                failed = 0;
                tries.succeeded();
                clear(&store, &mut recorded).await;
                options.poll_interval
            }
            Err(error @ ProjectionError::Fenced { .. }) => {
                // Another runner committed past this one, or a rebuild took over: nothing
                // of the batch was written. Read the live generation and its checkpoint again.
                tracing::warn!(projection = job.name(), %error, "projection checkpoint moved under this runner; reopening");
                worker = None;
                continue;
            }
            Err(error) => {
                let stop = job.stop_on_error();
                if stop {
                    tracing::error!(projection = job.name(), %error, "projection batch failed; the projection stops (on_error = \"stop\") until a runner starts it again");
                } else {
                    tracing::error!(projection = job.name(), %error, "projection batch failed; retrying");
                }
                super::metrics::failure(job.name(), job.version());
                report(Some(error.to_string()));
                // In the database too, for every process's status call.
                if let Some(slot) = worker.as_ref().map(|w: &Worker<S>| w.slot.clone()) {
                    let text = error.to_string();
                    if let Err(error) = store.record_failure(&slot, Some(&text), stop).await {
                        tracing::warn!(projection = job.name(), %error, "the failure could not be recorded");
                    }
                    recorded = Some(slot);
                }
                if stop {
                    break 'run;
                }
                // Reopened after a failure: the checkpoint is read again from the store.
                worker = None;
                failed = failed.saturating_add(1);
                if job.dead_letters() && matches!(error, ProjectionError::Handler { .. }) {
                    tries.failed(&error);
                    if tries.poison(job.tries(&options)).is_some() {
                        // Tried often enough: the next batch dead-letters it, now.
                        continue;
                    }
                }
                backoff(&options, failed)
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
    holder.release(&job).await;
    Ok(())
}

/// Clears a failure recorded for `slot`, now that a batch went through.
async fn clear<S: ProjectionStore>(store: &S, recorded: &mut Option<super::Slot>) {
    if let Some(slot) = recorded.take() {
        if let Err(error) = store.record_failure(&slot, None, false).await {
            tracing::warn!(projection = %slot.name, %error, "the failure could not be cleared");
            *recorded = Some(slot);
        }
    }
}

/// Waits `wait`, or less if the runner is stopped: whether it was.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::select! {
        _ = stopped.changed() => {}
        () = tokio::time::sleep(wait) => {}
    }
    *stopped.borrow()
}

/// The wait after the `failed`-th failure in a row: the retry interval, doubled for each
/// failure before it, at most the longest wait.
fn backoff(options: &RunnerOptions, failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(31);
    options
        .retry_interval
        .saturating_mul(1 << doublings)
        .min(options.max_retry_interval)
}

/// This runner's share of the projection's parts: an even split among the runners
/// present (rounded up), at most `max_shards`. The runners are counted again at most
/// twice per takeover interval, by whichever part task asks first.
async fn share<S: ProjectionStore>(
    crowd: &Shared,
    shard: Shard,
    store: &S,
    job: &Job<S>,
    options: &RunnerOptions,
) -> usize {
    let mut crowd = crowd.lock().await;
    let due = crowd
        .counted
        .is_none_or(|at| at.elapsed() >= options.takeover_interval / 2);
    if due {
        crowd.counted = Some(tokio::time::Instant::now());
        if crowd.presence.is_none() {
            match store.presence(job.name(), job.version()).await {
                Ok(presence) => crowd.presence = Some(presence),
                Err(error) => {
                    tracing::warn!(projection = job.name(), %error, "the runners present could not be counted; this runner keeps its share");
                }
            }
        }
        if let Some(presence) = &mut crowd.presence {
            match presence.runners().await {
                Ok(runners) => crowd.runners = runners,
                Err(error) => {
                    tracing::warn!(projection = job.name(), %error, "the runners present could not be counted; this runner keeps its share");
                    // Present again, on a new connection, at the next count.
                    crowd.presence = None;
                }
            }
        }
    }
    let parts = usize::try_from(shard.count).unwrap_or(usize::MAX);
    parts.div_ceil(crowd.runners.max(1)).min(options.max_shards)
}

/// Whether the runner may apply the projection now.
enum Holding {
    /// It holds the lease; `taken` when it has just taken it.
    Yes { taken: bool },
    /// It does not: ask again after this wait.
    No(Duration),
}

/// A projection's lease (or a part's), as one runner task asks for it, keeps it and
/// checks it.
struct Holder {
    shard: Shard,
    /// Every lease of the runner, to keep to its share of a projection's parts.
    held: Held,
    /// The runners present for the projection, whose number sets the share.
    crowd: Shared,
    lease: Option<Lease>,
    checked: Option<tokio::time::Instant>,
    /// Whether waiting for another runner's lease was logged already.
    waiting: bool,
}

impl Holder {
    /// Asks for the lease when it has none; checks it, now and then, when it has one.
    /// Taking, waiting for and losing a lease are logged loudly.
    async fn hold<S: ProjectionStore>(
        &mut self,
        store: &S,
        job: &Job<S>,
        options: &RunnerOptions,
    ) -> Holding {
        let name = job.name();
        if let Some(lease) = &mut self.lease {
            let due = self
                .checked
                .is_none_or(|at| at.elapsed() >= options.takeover_interval / 2);
            if !due {
                return Holding::Yes { taken: false };
            }
            self.checked = Some(tokio::time::Instant::now());
            if lease.alive().await {
                let beyond = if self.shard.is_part() {
                    let share = share(&self.crowd, self.shard, store, job, options).await;
                    self.beyond(job, share)
                } else {
                    false
                };
                if beyond {
                    // More runners than when it took the part: handed back, between two
                    // batches, for one with less than its share.
                    tracing::info!(
                        projection = name,
                        shard = self.shard.index,
                        "this runner hands a part back: its share of the parts is smaller now"
                    );
                    self.release(job).await;
                    return Holding::No(options.takeover_interval);
                }
                return Holding::Yes { taken: false };
            }
            tracing::error!(
                projection = name,
                shard = self.shard.index,
                "this runner lost the projection's lease; it stops applying it until it takes the lease again"
            );
            self.lease = None;
            self.mark(job, false);
        }
        if self.shard.is_part() {
            let share = share(&self.crowd, self.shard, store, job, options).await;
            // Counted and reserved at once, so that the runner's tasks asking together
            // take no more than its share.
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let parts = held
                .keys()
                .filter(|(n, v, _)| *n == name && *v == job.version())
                .count();
            if parts >= share {
                // Its share taken: the other parts are left to other runners.
                return Holding::No(options.takeover_interval);
            }
            held.insert((name, job.version(), self.shard), false);
        }
        let asked = store.lease(name, job.version(), self.shard).await;
        if !matches!(asked, Ok(Some(_))) {
            self.mark(job, false);
        }
        match asked {
            Ok(Some(lease)) => {
                if self.waiting {
                    tracing::warn!(
                        projection = name,
                        shard = self.shard.index,
                        "this runner took the projection over"
                    );
                } else {
                    tracing::info!(
                        projection = name,
                        shard = self.shard.index,
                        "this runner holds the projection's lease"
                    );
                }
                self.lease = Some(lease);
                self.checked = Some(tokio::time::Instant::now());
                self.mark(job, true);
                Holding::Yes { taken: true }
            }
            Ok(None) => {
                if !self.waiting {
                    tracing::warn!(
                        projection = name,
                        shard = self.shard.index,
                        "another runner holds the projection's lease; this one waits to take over"
                    );
                    self.waiting = true;
                }
                Holding::No(options.takeover_interval)
            }
            Err(error) => {
                tracing::error!(projection = name, %error, "the projection's lease could not be asked for; retrying");
                super::metrics::failure(name, job.version());
                Holding::No(options.retry_interval)
            }
        }
    }

    /// Whether this task's part is beyond the runner's `share`: the runner holds more
    /// parts than that, and this is one of its highest.
    fn beyond<S>(&self, job: &Job<S>, share: usize) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine: Vec<u32> = held
            .iter()
            .filter(|&(&(n, v, _), &granted)| granted && n == job.name() && v == job.version())
            .map(|((.., shard), _)| shard.index)
            .collect();
        mine.len() > share
            && mine
                .iter()
                .rev()
                .take(mine.len() - share)
                .any(|&i| i == self.shard.index)
    }

    /// Records in the runner's set whether this task holds its lease.
    fn mark<S>(&self, job: &Job<S>, holding: bool) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let id = (job.name(), job.version(), self.shard);
        if holding {
            held.insert(id, true);
        } else {
            held.remove(&id);
        }
    }

    /// Hands the lease back at once, so that another runner need not wait to take over.
    async fn release<S>(&mut self, job: &Job<S>) {
        if let Some(lease) = self.lease.take() {
            self.mark(job, false);
            lease.release().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_double_the_wait_up_to_the_longest() {
        let options = RunnerOptions::default()
            .retry_interval(Duration::from_millis(100))
            .max_retry_interval(Duration::from_secs(1));
        let waits: Vec<u128> = (1..=6).map(|n| backoff(&options, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&options, u32::MAX), Duration::from_secs(1));
    }
}
