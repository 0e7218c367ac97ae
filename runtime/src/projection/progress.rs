//! Where a projection is: its checkpoint against the log's head, and waiting for it to
//! reach a position.

use std::time::Duration;

use chrono::Utc;

use super::{ProjectionError, ProjectionStore};
use crate::event::Checkpoint;

/// One projection's progress, as stored: every process sees the same.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The projection's name.
    pub name: String,
    /// The projection's version.
    pub version: u32,
    /// The generation readers see.
    pub generation: u32,
    /// Whether it is applied, being rebuilt, failing, or inline.
    pub state: State,
    /// The last event it applied (or passed over).
    pub checkpoint: Checkpoint,
    /// The last event readable in the log.
    pub head: Checkpoint,
    /// How many events it has still to read.
    pub lag_events: u64,
    /// How long the oldest event it has still to read has been stored; zero when none.
    pub lag: Duration,
    /// When its checkpoint last moved (or it started): with `lag_events` above zero, an
    /// old time is a runner that has stalled, or none running.
    pub moved_at: Option<chrono::DateTime<Utc>>,
    /// What holds back the log's readable end, if anything (PostgreSQL: a long
    /// transaction anywhere in the cluster holds every projection and subscription).
    pub horizon: Option<super::Horizon>,
    /// Whether the store applies it inline, inside each append.
    pub inline: bool,
    /// Why its last batch failed, while it fails (recorded by the runner that runs it,
    /// in whichever process).
    pub failure: Option<String>,
    /// How many of its events wait in the dead letters (`on_error = "dead_letter"`): those
    /// whose handler kept failing and the later events of their documents, parked behind.
    pub dead_letters: usize,
    /// The newer version that serves this projection's readers since it caught up, if
    /// one does: this one is kept, for a rollback, until it is dropped.
    pub superseded_by: Option<u32>,
}

/// What a projection is doing, as its status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Applied as events come (or waiting for a runner to apply it).
    Live,
    /// Live, with a rebuild building its next generation beside it; or a new version
    /// built unseen beside an older one that serves, until it has caught up.
    Building,
    /// Its last batch failed; it is tried again after a wait.
    Failed,
    /// Its last batch failed and it halted (`on_error = "stop"`) until a runner starts it
    /// again; the other projections go on.
    Stopped,
    /// Applied inline, inside each append.
    Inline,
}

/// The status of every projection registered in the program (each `#[projection]`) that
/// runs on `store`: name, version, state, checkpoint and lag, as stored, so the same from
/// any process.
///
/// ```
/// use annals::prelude::*;
/// use annals::projection::{self, State};
/// use annals::MemoryStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged;
///
/// #[derive(Default, Serialize, Deserialize)]
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
/// let all = projection::statuses(&store).await?;
/// let pings = all.iter().find(|s| s.name == "pings").expect("registered");
/// assert_eq!((pings.version, pings.state), (1, State::Live));
/// # Ok(()) }
/// ```
pub async fn statuses<S: ProjectionStore>(store: &S) -> Result<Vec<Status>, ProjectionError> {
    let mut all = Vec::new();
    for job in super::worker::registered::<S>() {
        all.push(status(store, job.name(), job.version()).await?);
    }
    Ok(all)
}

pub(super) async fn status<S: ProjectionStore>(
    store: &S,
    name: &str,
    version: u32,
) -> Result<Status, ProjectionError> {
    let error = |e| ProjectionError::store(name, e);
    let (slot, checkpoint) = store.open_projection(name, version).await.map_err(error)?;
    if slot.inline || store.inline_projections().contains(&(name, version)) {
        // Applied in every append's transaction: at the head, always.
        let last = Checkpoint {
            transaction_id: u64::MAX,
            position: u64::MAX,
        };
        let head = store.log_after(last).await.map_err(error)?.head;
        return Ok(Status {
            name: name.to_owned(),
            version,
            generation: slot.generation,
            checkpoint: head,
            head,
            lag_events: 0,
            lag: Duration::ZERO,
            moved_at: None,
            horizon: None,
            state: State::Inline,
            inline: true,
            failure: None,
            dead_letters: 0,
            superseded_by: None,
        });
    }
    let after = store.log_after(checkpoint).await.map_err(error)?;
    let known = store.projection_state(name, version).await.map_err(error)?;
    let state = match (&known.failure, known.building) {
        (Some(_), _) if known.stopped => State::Stopped,
        (Some(_), _) => State::Failed,
        (None, true) => State::Building,
        (None, false) => State::Live,
    };
    let lag = after
        .first_recorded_at
        .and_then(|at| (Utc::now() - at).to_std().ok())
        .unwrap_or_default();
    super::metrics::lag(name, version, after.events, lag);
    Ok(Status {
        name: name.to_owned(),
        version,
        generation: slot.generation,
        checkpoint,
        head: after.head,
        lag_events: after.events,
        lag,
        moved_at: known.moved_at,
        horizon: store.horizon().await.map_err(error)?,
        state,
        inline: false,
        failure: known.failure,
        dead_letters: store.dead_letters(&slot).await.map_err(error)?.len(),
        superseded_by: store
            .projection_versions(name)
            .await
            .map_err(error)?
            .into_iter()
            .filter(|&(v, live)| live && v > version)
            .map(|(v, _)| v)
            .max(),
    })
}

/// Waits until the projection's readers see the event at `target` applied.
pub(super) async fn wait_for<S: ProjectionStore>(
    store: &S,
    name: &str,
    version: u32,
    target: Checkpoint,
    timeout: Duration,
) -> Result<(), ProjectionError> {
    let error = |e| ProjectionError::store(name, e);
    if store.inline_projections().contains(&(name, version)) {
        return Ok(());
    }
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let (slot, reached) = store.open_projection(name, version).await.map_err(error)?;
        // A version still built unseen has reached nothing its readers see.
        if slot.inline || (slot.live && reached >= target) {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(ProjectionError::Timeout {
                projection: name.to_owned(),
                checkpoint: target,
                reached,
                waited,
            });
        }
        // Progress may be another process's: read it again soon, then less often.
        tokio::time::sleep(pause.min(timeout - waited)).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Waits until projection `P` has applied the event at `checkpoint`, whichever process
/// runs it: read-your-writes after a command (`Executed::last_checkpoint`) or an append
/// ([`AppendResult::last_checkpoint`](crate::AppendResult::last_checkpoint)).
///
/// ```
/// use std::time::Duration;
/// use annals::prelude::*;
/// use annals::projection::{self, Runner};
/// use annals::MemoryStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged;
///
/// #[derive(Default, Serialize, Deserialize)]
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
/// let done = store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged)?]).await?;
/// // Nothing runs it: the wait ends with a typed error.
/// let late = projection::wait_for_projection::<Pings, _>(&store, done.last_checkpoint(), Duration::from_millis(20)).await;
/// assert!(matches!(late, Err(annals::projection::ProjectionError::Timeout { .. })));
/// Runner::new(store.clone()).with::<Pings>().catch_up().await?;
/// projection::wait_for_projection::<Pings, _>(&store, done.last_checkpoint(), Duration::from_secs(1)).await?;
/// # Ok(()) }
/// ```
pub async fn wait_for_projection<P: super::Projection, S: ProjectionStore>(
    store: &S,
    checkpoint: Checkpoint,
    timeout: Duration,
) -> Result<(), ProjectionError> {
    wait_for(store, P::NAME, P::VERSION, checkpoint, timeout).await
}

/// The stored progress of projection `P`.
pub async fn status_of<P: super::Projection, S: ProjectionStore>(
    store: &S,
) -> Result<Status, ProjectionError> {
    status(store, P::NAME, P::VERSION).await
}
