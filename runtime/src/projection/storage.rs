//! What a store keeps for projections: checkpoints and documents, each batch's changes
//! committed with its checkpoint in one transaction.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{DeadLetter, DeadLetterAction, DocumentProjection, Lease, Presence};
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::{EventStore, StoreError};

/// A batch's document changes: `(key, Some(JSON))` to store, `(key, None)` to delete.
pub type Changes = Vec<(String, Option<String>)>;

/// One projection's storage: its name and version, and the generation of its read model
/// (a rebuild writes a new generation beside the one readers see).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The projection's name.
    pub name: String,
    /// The projection's version.
    pub version: u32,
    /// The read model's generation.
    pub generation: u32,
    /// Whether a store applies the projection inline, inside each append (recorded in the
    /// database, so runners of every process leave it alone).
    pub inline: bool,
    /// Whether readers see this generation. A new version of a projection whose older
    /// version serves is built unseen, and takes over once it has caught up.
    pub live: bool,
    /// The part of the keys this slot applies, with a checkpoint of its own; the whole
    /// projection for one that is not sharded.
    pub shard: Shard,
}

/// One of the parts a sharded projection (`#[projection(shards = N)]`) splits its
/// documents into, by a hash of their keys: each has its own checkpoint and lease, so
/// several runners share the projection's work, while readers read across all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Shard {
    /// The whole projection, not split.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether the document under `key` is in this part.
    pub fn holds(&self, key: &str) -> bool {
        self.count <= 1 || shard_of(key, self.count) == self.index
    }

    /// Whether this is a part of a split projection.
    pub fn is_part(&self) -> bool {
        self.count > 1
    }
}

/// The part of `count` the document under `key` belongs to: FNV-1a over the key's bytes,
/// fixed here so that every process and every release splits keys alike.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % u64::from(count.max(1))) as u32
}

/// A store that also keeps projections: their checkpoints and documents, next to the log.
///
/// Implemented by [`MemoryStore`](crate::MemoryStore), `SqliteStore` and `PostgresStore`.
/// A third-party backend implements it to run projections; the conformance suite's
/// projection checks then apply to it. Documents are JSON text here: the typed API is
/// [`Documents`](super::Documents).
pub trait ProjectionStore: EventStore {
    /// The generation readers see and its checkpoint, starting the projection at
    /// generation 1 from [`Checkpoint::START`] if it has never run.
    fn open_projection(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<(Slot, Checkpoint), StoreError>> + Send;

    /// Starts a rebuild: a new generation beside the live one, empty, at
    /// [`Checkpoint::START`], which readers do not see. A generation left by a rebuild that
    /// never finished is dropped first.
    fn begin_rebuild(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<Slot, StoreError>> + Send;

    /// Makes `slot`, rebuilt up to `at`, the generation readers see, and drops the one
    /// they saw, in one transaction; only if the live generation has not gone past `at`
    /// (`false` then: catch up and try again).
    fn promote(
        &self,
        slot: &Slot,
        at: Checkpoint,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Parks `letters` (dead letters of `slot`, and the events waiting behind them), each
    /// once, whatever was parked before: a batch parks before it commits, and one that does
    /// not commit parks the same letters again when it is tried again.
    fn park(
        &self,
        slot: &Slot,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The dead letters of `slot`, in the order of the log.
    fn dead_letters(
        &self,
        slot: &Slot,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// In one transaction: removes the dead letters of `key` at `letters`, writes its
    /// document when `document` is given (`Some(None)` deletes it), and records `action`.
    /// Returns how many it removed: all of them, or none (and nothing written) when some
    /// were settled by another call meanwhile.
    fn settle_dead_letters(
        &self,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        document: Option<Option<String>>,
        action: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// What was done with the dead letters of a projection, oldest first.
    fn dead_letter_actions(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<Vec<DeadLetterAction>, StoreError>> + Send;

    /// The stored event at `at`, if there is one.
    fn read_event(
        &self,
        at: Checkpoint,
    ) -> impl Future<Output = Result<Option<RecordedEvent>, StoreError>> + Send;

    /// Drops every generation of projection `name` at `version`: its documents and its
    /// checkpoints. For an old version once the new one serves, or kept until then for a
    /// rollback. Returns whether there was anything to drop.
    fn drop_projection(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A slot's checkpoint, `None` if it does not exist.
    fn projection_checkpoint(
        &self,
        slot: &Slot,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send;

    /// The slot's documents under `keys` (those that exist), as `(key, JSON)`.
    fn load_documents(
        &self,
        slot: &Slot,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Writes one batch in one transaction: each `(key, Some(JSON))` stored, each `(key,
    /// None)` deleted, and the checkpoint moved from `from` to `to`. Only if the stored
    /// checkpoint is still `from`: otherwise nothing is written and the answer is `false`.
    fn commit_documents(
        &self,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
        changes: Changes,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every stored version of projection `name`, oldest first, each with whether readers
    /// see it (it has a live generation) or it is still being built.
    fn projection_versions(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<(u32, bool)>, StoreError>> + Send;

    /// The documents under `keys` of the generation readers see, in key order.
    fn read_documents(
        &self,
        name: &str,
        version: u32,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Up to `limit` documents of the generation readers see, with keys after `after`, in
    /// key order.
    fn list_documents(
        &self,
        name: &str,
        version: u32,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// This store with projection `P` applied inline: inside every append's transaction
    /// (group commit included where the store has it), so its documents are never behind
    /// the log, and a handler that fails refuses the append
    /// ([`StoreError::Inline`](crate::StoreError::Inline)), writing nothing. Handles cloned
    /// from the returned one share it; a runner leaves the projection alone.
    ///
    /// ```
    /// use annals::prelude::*;
    /// use annals::projection::{Documents, ProjectionStore};
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
    /// let store = MemoryStore::new().inline::<Pings>().await?;
    /// store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged)?]).await?;
    /// // No runner, no wait: the append wrote the document.
    /// assert_eq!(Documents::<Pings, _>::new(store).get("pinger-1").await?, Some(Pings { count: 1 }));
    /// # Ok(()) }
    /// ```
    fn inline<P: DocumentProjection>(self)
    -> impl Future<Output = Result<Self, StoreError>> + Send;

    /// The (name, version) of the projections this store applies inline, inside each
    /// append: a runner leaves them alone, and they are never behind.
    fn inline_projections(&self) -> Vec<(&'static str, u32)> {
        Vec::new()
    }

    /// [`fold_all`](crate::EventStore::fold_all) for the events named in `names` only: up
    /// to `limit` of them after `after`, in global order, and how far the log was
    /// scanned: past every event not named up to [`Scanned::reached`], so a checkpoint
    /// there skips nothing a projection of these names needs. The default filters as it
    /// reads; a server-side store filters in its query, sending only those events.
    fn fold_named<F, E>(
        &self,
        after: Checkpoint,
        limit: usize,
        names: &[&str],
        mut f: F,
    ) -> impl Future<Output = Result<Scanned, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            let mut scanned = Scanned {
                delivered: 0,
                reached: after,
            };
            let page = limit.max(1024);
            loop {
                let seen = self
                    .fold_all(
                        scanned.reached,
                        page,
                        |checkpoint, event| -> Result<(), E> {
                            if scanned.delivered == limit {
                                return Ok(());
                            }
                            if names.contains(&event.name) {
                                f(checkpoint, event)?;
                                scanned.delivered += 1;
                            }
                            scanned.reached = checkpoint;
                            Ok(())
                        },
                    )
                    .await?;
                if seen < page || scanned.delivered == limit {
                    return Ok(scanned);
                }
            }
        }
    }

    /// Records why `slot`'s last batch failed, and whether the projection halted on it
    /// (`stopped`), or (`None`) that it no longer fails: in the database, so every
    /// process's status call sees it. The default keeps nothing.
    fn record_failure(
        &self,
        slot: &Slot,
        failure: Option<&str>,
        stopped: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (slot, failure, stopped);
        async { Ok(()) }
    }

    /// What the store knows of a projection beyond its checkpoint: whether a rebuild is
    /// building a generation beside the live one, and why its last batch failed.
    fn projection_state(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<ProjectionState, StoreError>> + Send {
        let _ = (name, version);
        async { Ok(ProjectionState::default()) }
    }

    /// Asks for the lease of a projection: the right to apply it, held by one runner at a
    /// time across processes. `None` when another runner holds it. The default, for
    /// stores only this process uses, grants every request.
    fn lease(
        &self,
        name: &str,
        version: u32,
        shard: Shard,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send {
        let _ = (name, version, shard);
        async { Ok(Some(Lease::unshared())) }
    }

    /// Counts this runner among the runners of a projection for as long as the presence is
    /// kept, so that they split its parts evenly. The default, for stores only this
    /// process uses, counts one.
    fn presence(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<Presence, StoreError>> + Send {
        let _ = (name, version);
        async { Ok(Presence::alone()) }
    }

    /// Whether this store keeps sharded projections in parts, each with its checkpoint and
    /// lease, for several runners to share. A store that does not (the default: stores a
    /// single process uses) runs a sharded projection whole.
    fn keeps_shards(&self) -> bool {
        false
    }

    /// The slot of part `shard` of `slot`'s generation, and its checkpoint: every part of
    /// the generation is created with the first one asked for, so progress read across
    /// them is never ahead of one not yet started. Only for stores that keep shards.
    fn open_shard(
        &self,
        slot: &Slot,
        shard: Shard,
    ) -> impl Future<Output = Result<(Slot, Checkpoint), StoreError>> + Send {
        let _ = (slot, shard);
        async {
            Err(StoreError::backend(std::io::Error::other(
                "this store keeps no shards",
            )))
        }
    }

    /// The generation a rebuild is building beside the live one, if one is: a sharded
    /// rebuild started by another runner, for this one to join.
    fn rebuilding(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<Option<Slot>, StoreError>> + Send {
        let _ = (name, version);
        async { Ok(None) }
    }

    /// Whether each part of `slot`'s generation has caught up with the log once, by part.
    fn shard_states(
        &self,
        slot: &Slot,
    ) -> impl Future<Output = Result<Vec<(u32, bool)>, StoreError>> + Send {
        let _ = slot;
        async { Ok(Vec::new()) }
    }

    /// Leases to build parts of a rebuild's generation `slot`, one runner at a time per
    /// part, so that several runners share a rebuild: up to `max` of `parts`, in order,
    /// skipping those another runner holds. Returns the parts granted and one lease that
    /// holds them all. The default, for stores only this process uses, grants the first
    /// `max`.
    fn rebuild_leases(
        &self,
        slot: &Slot,
        parts: &[Shard],
        max: usize,
    ) -> impl Future<Output = Result<(Vec<Shard>, Lease), StoreError>> + Send {
        let granted = parts.iter().copied().take(max).collect();
        let _ = slot;
        async move { Ok((granted, Lease::unshared())) }
    }

    /// Records that part `slot.shard` has caught up with the log once: a sharded new
    /// version or rebuild takes over only when every part has.
    fn shard_caught_up(&self, slot: &Slot) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = slot;
        async { Ok(()) }
    }

    /// What holds back the log's readable end, when something does: on PostgreSQL, the
    /// oldest running transaction anywhere in the cluster, above which committed events
    /// wait unread. `None` for stores where every committed event is readable at once.
    fn horizon(&self) -> impl Future<Output = Result<Option<Horizon>, StoreError>> + Send {
        async { Ok(None) }
    }

    /// How far the log readable now goes past `after`: its last checkpoint, how many
    /// events come after `after`, and when the first of them was stored.
    fn log_after(
        &self,
        after: Checkpoint,
    ) -> impl Future<Output = Result<LogAfter, StoreError>> + Send;
}

/// A transaction holding back what readers can see ([`ProjectionStore::horizon`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Horizon {
    /// The server process running it (`pg_stat_activity.pid`), if it is found there.
    pub pid: Option<i32>,
    /// Its `application_name`.
    pub application: Option<String>,
    /// How long it has been running.
    pub running_for: std::time::Duration,
    /// Committed events it keeps every reader from seeing.
    pub events_waiting: u64,
}

/// What [`ProjectionStore::projection_state`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectionState {
    /// A rebuild is building a generation beside the live one.
    pub building: bool,
    /// Why the last batch failed, while the projection fails.
    pub failure: Option<String>,
    /// The projection halted on that failure.
    pub stopped: bool,
    /// When the live generation's checkpoint last moved (or the projection started).
    pub moved_at: Option<DateTime<Utc>>,
}

/// What [`ProjectionStore::fold_named`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// How many events it delivered.
    pub delivered: usize,
    /// Where the scan ended: every event up to here was delivered or not named.
    pub reached: Checkpoint,
}

/// What [`ProjectionStore::log_after`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogAfter {
    /// The checkpoint of the last event readable now ([`Checkpoint::START`] when none).
    pub head: Checkpoint,
    /// How many readable events come after the checkpoint asked about.
    pub events: u64,
    /// When the first of them was stored.
    pub first_recorded_at: Option<DateTime<Utc>>,
}
