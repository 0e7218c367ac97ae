//! The memory store's projections: checkpoints and documents under the log's lock.

use std::collections::{BTreeMap, HashMap};

use std::future::Future;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::event::{Checkpoint, RecordedEvent};
use crate::projection::{
    Changes, DeadLetter, DeadLetterAction, DocumentProjection, InlineSet, InlineTx, LogAfter,
    ProjectionState, ProjectionStore, Shard, Slot, inline,
};
use crate::store::StoreError;

/// Every projection's generations, by name and version.
#[derive(Default)]
pub(super) struct Projections {
    by_name: HashMap<(String, u32), Generations>,
    /// Dead letters by (name, version, generation), in the order of the log.
    dead: HashMap<(String, u32, u32), BTreeMap<Checkpoint, DeadLetter>>,
    /// What was done with dead letters, by (name, version).
    actions: HashMap<(String, u32), Vec<DeadLetterAction>>,
}

struct Generations {
    /// The generation readers see, once `serving`.
    live: u32,
    /// Whether readers see `live`: false while a new version is built beside an older
    /// one that serves, until it has caught up.
    serving: bool,
    /// Why a generation's last batch failed, and whether it halted on it, by generation.
    failures: HashMap<u32, (String, bool)>,
    /// Applied inline by the stores that append.
    inline: bool,
    slots: HashMap<u32, Stored>,
}

#[derive(Default)]
struct Stored {
    checkpoint: Checkpoint,
    /// When the checkpoint last moved.
    moved_at: Option<DateTime<Utc>>,
    documents: BTreeMap<String, String>,
}

impl Projections {
    fn slot(&self, slot: &Slot) -> Option<&Stored> {
        self.by_name
            .get(&(slot.name.clone(), slot.version))?
            .slots
            .get(&slot.generation)
    }

    fn live(&self, name: &str, version: u32) -> Option<&Stored> {
        let generations = self
            .by_name
            .get(&(name.to_owned(), version))
            .filter(|g| g.serving)?;
        generations.slots.get(&generations.live)
    }
}

impl ProjectionStore for MemoryStore {
    async fn open_projection(
        &self,
        name: &str,
        version: u32,
    ) -> Result<(Slot, Checkpoint), StoreError> {
        let mut log = self.write();
        // A new version is built unseen while an older one serves.
        let older = log
            .projections
            .by_name
            .iter()
            .any(|((n, v), g)| n == name && *v < version && g.serving);
        let generations = log
            .projections
            .by_name
            .entry((name.to_owned(), version))
            .or_insert_with(|| Generations {
                live: 1,
                serving: !older,
                failures: HashMap::new(),
                inline: false,
                slots: HashMap::from([(1, Stored::default())]),
            });
        let (live, inline) = (generations.live, generations.inline);
        let serving = generations.serving;
        let checkpoint = generations.slots.entry(live).or_default().checkpoint;
        let slot = Slot {
            name: name.to_owned(),
            version,
            generation: live,
            inline,
            live: serving,
            shard: Shard::WHOLE,
        };
        Ok((slot, checkpoint))
    }

    async fn begin_rebuild(&self, name: &str, version: u32) -> Result<Slot, StoreError> {
        let (live, _) = self.open_projection(name, version).await?;
        let mut log = self.write();
        let projections = &mut log.projections;
        let Some(generations) = projections.by_name.get_mut(&(name.to_owned(), version)) else {
            return Err(StoreError::backend(std::io::Error::other(format!(
                "projection `{name}` v{version} vanished"
            ))));
        };
        generations.slots.retain(|&g, _| g == live.generation);
        projections
            .dead
            .retain(|(n, v, g), _| (n.as_str(), *v) != (name, version) || *g == live.generation);
        let generation = live.generation + 1;
        generations.slots.insert(generation, Stored::default());
        Ok(Slot {
            generation,
            live: false,
            ..live
        })
    }

    async fn promote(&self, slot: &Slot, at: Checkpoint) -> Result<bool, StoreError> {
        let mut log = self.write();
        let Some(generations) = log
            .projections
            .by_name
            .get_mut(&(slot.name.clone(), slot.version))
        else {
            return Ok(false);
        };
        let live = generations
            .slots
            .get(&generations.live)
            .map(|s| s.checkpoint);
        let rebuilt = generations
            .slots
            .get(&slot.generation)
            .map(|s| s.checkpoint);
        if rebuilt != Some(at) || live.is_some_and(|live| live > at) {
            return Ok(false);
        }
        generations.live = slot.generation;
        generations.serving = true;
        generations.slots.retain(|&g, _| g == slot.generation);
        log.projections
            .dead
            .retain(|(n, v, g), _| (n, *v) != (&slot.name, slot.version) || *g == slot.generation);
        Ok(true)
    }

    async fn record_failure(
        &self,
        slot: &Slot,
        failure: Option<&str>,
        stopped: bool,
    ) -> Result<(), StoreError> {
        let mut log = self.write();
        if let Some(generations) = log
            .projections
            .by_name
            .get_mut(&(slot.name.clone(), slot.version))
        {
            match failure {
                Some(text) => generations
                    .failures
                    .insert(slot.generation, (text.to_owned(), stopped)),
                None => generations.failures.remove(&slot.generation),
            };
        }
        Ok(())
    }

    async fn projection_state(
        &self,
        name: &str,
        version: u32,
    ) -> Result<ProjectionState, StoreError> {
        let log = self.read();
        Ok(log
            .projections
            .by_name
            .get(&(name.to_owned(), version))
            .map(|g| {
                let failure = g.failures.get(&g.live);
                ProjectionState {
                    building: !g.serving || g.slots.keys().any(|&generation| generation != g.live),
                    failure: failure.map(|(text, _)| text.clone()),
                    stopped: failure.is_some_and(|(_, stopped)| *stopped),
                    moved_at: g.slots.get(&g.live).and_then(|s| s.moved_at),
                }
            })
            .unwrap_or_default())
    }

    async fn projection_versions(&self, name: &str) -> Result<Vec<(u32, bool)>, StoreError> {
        let log = self.read();
        let mut versions: Vec<(u32, bool)> = log
            .projections
            .by_name
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, v), g)| (*v, g.serving))
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    async fn drop_projection(&self, name: &str, version: u32) -> Result<bool, StoreError> {
        let mut log = self.write();
        log.projections
            .dead
            .retain(|(n, v, _), _| (n.as_str(), *v) != (name, version));
        Ok(log
            .projections
            .by_name
            .remove(&(name.to_owned(), version))
            .is_some())
    }

    async fn park(&self, slot: &Slot, letters: &[DeadLetter]) -> Result<(), StoreError> {
        let mut log = self.write();
        let parked = log
            .projections
            .dead
            .entry((slot.name.clone(), slot.version, slot.generation))
            .or_default();
        for letter in letters {
            parked
                .entry(letter.checkpoint)
                .or_insert_with(|| letter.clone());
        }
        Ok(())
    }

    async fn dead_letters(&self, slot: &Slot) -> Result<Vec<DeadLetter>, StoreError> {
        let log = self.read();
        Ok(log
            .projections
            .dead
            .get(&(slot.name.clone(), slot.version, slot.generation))
            .map(|parked| parked.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn settle_dead_letters(
        &self,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        document: Option<Option<String>>,
        action: &str,
    ) -> Result<u64, StoreError> {
        let mut log = self.write();
        let mut removed = 0;
        if let Some(parked) =
            log.projections
                .dead
                .get_mut(&(slot.name.clone(), slot.version, slot.generation))
        {
            let all = letters
                .iter()
                .all(|at| parked.get(at).is_some_and(|letter| letter.key == key));
            if !all {
                // Some were settled by another call meanwhile: this one changes nothing.
                return Ok(0);
            }
            for at in letters {
                parked.remove(at);
                removed += 1;
            }
        }
        if removed == 0 {
            return Ok(0);
        }
        if let Some(document) = document {
            let writes = Writes(vec![(slot.clone(), vec![(key.to_owned(), document)])]);
            log.projections.apply(writes);
        }
        log.projections
            .actions
            .entry((slot.name.clone(), slot.version))
            .or_default()
            .push(DeadLetterAction {
                action: action.to_owned(),
                key: key.to_owned(),
                events: removed,
                at: Utc::now(),
            });
        Ok(removed)
    }

    async fn dead_letter_actions(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<DeadLetterAction>, StoreError> {
        let log = self.read();
        Ok(log
            .projections
            .actions
            .get(&(name.to_owned(), version))
            .cloned()
            .unwrap_or_default())
    }

    async fn read_event(&self, at: Checkpoint) -> Result<Option<RecordedEvent>, StoreError> {
        let log = self.read();
        let index = usize::try_from(at.position)
            .ok()
            .and_then(|p| p.checked_sub(1));
        Ok(index
            .and_then(|i| log.events.get(i))
            .filter(|event| event.checkpoint() == at)
            .cloned())
    }

    async fn projection_checkpoint(&self, slot: &Slot) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.read().projections.slot(slot).map(|s| s.checkpoint))
    }

    async fn load_documents(
        &self,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let log = self.read();
        Ok(log
            .projections
            .slot(slot)
            .map(|stored| found(&stored.documents, keys))
            .unwrap_or_default())
    }

    async fn commit_documents(
        &self,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
        changes: Changes,
    ) -> Result<bool, StoreError> {
        let mut log = self.write();
        let Some(stored) = log
            .projections
            .by_name
            .get_mut(&(slot.name.clone(), slot.version))
            .and_then(|generations| generations.slots.get_mut(&slot.generation))
        else {
            return Ok(false);
        };
        if stored.checkpoint != from {
            return Ok(false);
        }
        for (key, body) in changes {
            match body {
                Some(body) => stored.documents.insert(key, body),
                None => stored.documents.remove(&key),
            };
        }
        stored.checkpoint = to;
        stored.moved_at = Some(Utc::now());
        Ok(true)
    }

    async fn read_documents(
        &self,
        name: &str,
        version: u32,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let log = self.read();
        Ok(log
            .projections
            .live(name, version)
            .map(|stored| found(&stored.documents, keys))
            .unwrap_or_default())
    }

    async fn list_documents(
        &self,
        name: &str,
        version: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let log = self.read();
        let Some(stored) = log.projections.live(name, version) else {
            return Ok(Vec::new());
        };
        let range = match after {
            Some(after) => stored
                .documents
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => stored.documents.range::<str, _>(..),
        };
        Ok(range
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn inline<P: DocumentProjection>(mut self) -> Result<Self, StoreError> {
        let (mut slot, at) = self.open_projection(P::NAME, P::VERSION).await?;
        if !slot.live {
            // Inline, a new version serves at once: it applies what is appended from now,
            // and replays nothing (as any projection made inline).
            self.promote(&slot, at).await?;
            slot.live = true;
        }
        if let Some(generations) = self
            .write()
            .projections
            .by_name
            .get_mut(&(P::NAME.to_owned(), P::VERSION))
        {
            generations.inline = true;
        }
        slot.inline = true;
        self.inline = self.inline.with::<P>(slot);
        Ok(self)
    }

    fn inline_projections(&self) -> Vec<(&'static str, u32)> {
        self.inline.names()
    }

    async fn log_after(&self, after: Checkpoint) -> Result<LogAfter, StoreError> {
        let log = self.read();
        let start = log.events.partition_point(|e| e.checkpoint() <= after);
        let first_recorded_at: Option<DateTime<Utc>> =
            log.events.get(start).map(|event| event.recorded_at);
        Ok(LogAfter {
            head: log
                .events
                .last()
                .map_or(Checkpoint::START, |event| event.checkpoint()),
            events: (log.events.len() - start) as u64,
            first_recorded_at,
        })
    }
}

/// The documents under `keys` that exist, in key order.
fn found(documents: &BTreeMap<String, String>, keys: &[String]) -> Vec<(String, String)> {
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| documents.get(key).map(|body| (key.clone(), body.clone())))
        .collect()
}

/// Document writes an append's inline projections decided, applied once it goes in.
pub(super) struct Writes(Vec<(Slot, Changes)>);

impl Projections {
    /// Runs `set` over `records` against the documents as they are, without changing
    /// them: the writes come back to apply once the append is sure to go in.
    pub(super) fn inline(
        &self,
        set: &InlineSet,
        stream: &str,
        records: &[RecordedEvent],
    ) -> Result<Writes, StoreError> {
        let mut tx = Staged {
            projections: self,
            writes: Vec::new(),
        };
        // Every step of the memory transaction is ready at once: no waker is ever needed.
        let applied = {
            let future = std::pin::pin!(inline::apply(&mut tx, set, stream, records));
            match future.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(applied) => applied,
                Poll::Pending => Err(StoreError::backend(std::io::Error::other(
                    "an inline projection of the memory store waited",
                ))),
            }
        };
        match applied? {
            true => Ok(Writes(tx.writes)),
            false => Err(StoreError::backend(std::io::Error::other(
                "a document changed under the memory store's lock",
            ))),
        }
    }

    pub(super) fn apply(&mut self, writes: Writes) {
        for (slot, changes) in writes.0 {
            let generations = self
                .by_name
                .entry((slot.name.clone(), slot.version))
                .or_insert_with(|| Generations {
                    live: slot.generation,
                    serving: true,
                    failures: HashMap::new(),
                    inline: true,
                    slots: HashMap::new(),
                });
            let stored = generations.slots.entry(slot.generation).or_default();
            for (key, body) in changes {
                match body {
                    Some(body) => stored.documents.insert(key, body),
                    None => stored.documents.remove(&key),
                };
            }
        }
    }
}

/// The memory store's side of an inline transaction: reads the documents, keeps the writes.
struct Staged<'a> {
    projections: &'a Projections,
    writes: Vec<(Slot, Changes)>,
}

impl InlineTx for Staged<'_> {
    async fn load(
        &mut self,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .projections
            .slot(slot)
            .map(|stored| found(&stored.documents, keys))
            .unwrap_or_default())
    }

    async fn write(
        &mut self,
        slot: &Slot,
        changes: Changes,
        _: &[String],
    ) -> Result<bool, StoreError> {
        // Under the log's lock: no other append changes a document meanwhile.
        self.writes.push((slot.clone(), changes));
        Ok(true)
    }
}
