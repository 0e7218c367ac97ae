//! One projection's work: read a batch after its checkpoint, apply it, commit it with the
//! checkpoint; for document projections and for SQL-table projections.

use std::collections::{HashMap, HashSet};

use tracing::Instrument;

use super::describe::{Described, Erased};
use super::letter::{Poison, Tries};
use super::{Change, DeadLetter, ProjectionError, ProjectionStore, RunnerOptions, Shard, Slot};
use crate::event::{Checkpoint, DecodeError, StoredEvent};
use crate::store::StoreError;

mod job;
mod shared;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod tables;

pub(crate) use job::{Job, registered};

/// Why a read stopped early.
pub(crate) enum Stop {
    Store(StoreError),
    Decode(DecodeError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// An event the projection handles, decoded, with where it is.
pub(crate) struct Item {
    checkpoint: Checkpoint,
    /// How many events (handled or not) the read had seen up to and including this one.
    ordinal: usize,
    key: String,
    event: Erased,
    stream: String,
    stream_version: u64,
    name: String,
    version: u32,
}

/// What one read found.
pub(crate) struct Read {
    items: Vec<Item>,
    /// The checkpoint of the last event read.
    last: Checkpoint,
    /// How many events were read, handled or not.
    seen: usize,
    stop: Option<Stop>,
}

/// One projection's position and the work of one batch.
pub(crate) struct Worker<S> {
    pub(crate) store: S,
    pub(crate) job: Job<S>,
    pub(crate) options: RunnerOptions,
    pub(crate) slot: Slot,
    pub(crate) checkpoint: Checkpoint,
    /// The stored names of the events the projection consumes: the store sends only
    /// those when `filtered` (a rebuild reads everything, to count its progress).
    pub(crate) names: Vec<&'static str>,
    pub(crate) filtered: bool,
    /// An event whose handler kept failing, to put in the dead letters instead of trying
    /// it once more (`on_error = "dead_letter"`).
    pub(crate) poison: Option<Poison>,
    /// A new version built unseen beside an older one that serves: readers are moved to
    /// it, in one transaction, once it has caught up.
    pub(crate) takes_over: bool,
    /// For a part of a sharded projection: whether it was recorded as caught up once.
    pub(crate) marked: bool,
}

impl<S: ProjectionStore> Worker<S> {
    /// The projection at its live generation's checkpoint, its tables set up.
    pub(crate) async fn open(
        store: S,
        job: Job<S>,
        options: RunnerOptions,
        shard: Shard,
    ) -> Result<Self, ProjectionError> {
        let error = |e| ProjectionError::store(job.name(), e);
        let (slot, checkpoint) = store
            .open_projection(job.name(), job.version())
            .await
            .map_err(error)?;
        let (slot, checkpoint) = if shard.is_part() {
            store.open_shard(&slot, shard).await.map_err(error)?
        } else {
            (slot, checkpoint)
        };
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Job::Tables(run) = &job {
            run.setup(&store).await?;
        }
        let names = job.names();
        let takes_over = !slot.live;
        Ok(Self {
            store,
            job,
            options,
            slot,
            checkpoint,
            names,
            filtered: true,
            poison: None,
            takes_over,
            marked: false,
        })
    }

    fn store_error(&self, error: StoreError) -> ProjectionError {
        ProjectionError::store(self.job.name(), error)
    }

    /// Reads, applies and commits one batch; returns how many events it read. An event
    /// that does not decode, or whose handler fails, ends the batch before it: what came
    /// before commits, and the error is returned.
    pub(crate) async fn step(&mut self) -> Result<usize, ProjectionError> {
        if self.slot.inline {
            // The stores that append apply it inside each append.
            return Ok(0);
        }
        let span = tracing::debug_span!("projection batch", projection = self.job.name(), from = %self.checkpoint);
        let start = std::time::Instant::now();
        let done = match self.job.clone() {
            Job::Documents(described) => self.documents(described).instrument(span).await,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => self.tables(run.as_ref()).instrument(span).await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match never {},
        };
        if let Ok(read) = done {
            // Dead-lettered, if it was in the batch.
            self.poison = None;
            if read > 0 {
                super::metrics::batch(self.job.name(), self.job.version(), read, start.elapsed());
            }
            if read < self.options.batch_size {
                if self.slot.shard.is_part() && !self.marked {
                    self.store
                        .shard_caught_up(&self.slot)
                        .await
                        .map_err(|e| self.store_error(e))?;
                    self.marked = true;
                }
                if self.takes_over {
                    self.take_over().await?;
                }
            }
        }
        done
    }

    /// Caught up: this version serves its readers from now on, the older ones kept (for
    /// a rollback) until dropped. When another runner moved the checkpoint meanwhile, the
    /// next caught-up batch tries again.
    async fn take_over(&mut self) -> Result<(), ProjectionError> {
        let promoted = self
            .store
            .promote(&self.slot, self.checkpoint)
            .await
            .map_err(|e| self.store_error(e))?;
        if promoted {
            self.takes_over = false;
            self.slot.live = true;
            tracing::info!(
                projection = self.job.name(),
                version = self.job.version(),
                checkpoint = %self.checkpoint,
                "the new version has caught up and serves its readers; older versions stay until dropped"
            );
        }
        Ok(())
    }

    /// One batch where nothing waits between tries: an event whose handler fails is tried
    /// again at once, and goes to the dead letters once tried often enough (for a projection
    /// that keeps them; for the others the failure is returned).
    pub(crate) async fn step_now(&mut self, tries: &mut Tries) -> Result<usize, ProjectionError> {
        loop {
            match self.step().await {
                Err(error @ ProjectionError::Handler { .. }) if self.job.dead_letters() => {
                    tries.failed(&error);
                    self.poison = tries.poison(self.job.tries(&self.options));
                }
                Ok(read) => {
                    tries.succeeded();
                    return Ok(read);
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn documents(&mut self, described: Described) -> Result<usize, ProjectionError> {
        let read = self.read(described, self.options.batch_size).await?;
        self.apply_read(described, read).await
    }

    /// Applies a batch read from this worker's checkpoint and commits it; on a handler's
    /// failure, commits the events before it and returns the failure.
    async fn apply_read(
        &mut self,
        described: Described,
        read: Read,
    ) -> Result<usize, ProjectionError> {
        let seen = read.seen;
        match self.apply(described, read).await? {
            None => Ok(seen),
            Some(failed) => {
                // Handlers may have changed documents before one failed: those changes are
                // thrown away, and the events before the failed one are applied again.
                let mut before = self.read(described, failed.ordinal - 1).await?;
                before.stop = None;
                if let Some(again) = self.apply(described, before).await? {
                    return Err(again.error);
                }
                Err(failed.error)
            }
        }
    }

    /// Reads up to `limit` events after the checkpoint and routes those the projection
    /// handles.
    async fn read(&self, described: Described, limit: usize) -> Result<Read, ProjectionError> {
        let route = described.route;
        let shard = self.slot.shard;
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
                // Another part's document: passed over, as an event not consumed.
                Some(Ok((key, _))) if !shard.holds(&key) => {}
                Some(Ok((key, decoded))) => read.items.push(Item {
                    checkpoint,
                    ordinal: read.seen + 1,
                    key,
                    event: decoded,
                    stream: event.stream_id.to_owned(),
                    stream_version: event.stream_version,
                    name: event.name.to_owned(),
                    version: event.version,
                }),
                Some(Err(error)) => return Err(Stop::Decode(error)),
            }
            read.seen += 1;
            read.last = checkpoint;
            Ok(())
        };
        let outcome = if described.reads_metadata {
            match self.store.read_all(self.checkpoint, limit).await {
                Ok(records) => records
                    .iter()
                    .try_for_each(|record| take(record.checkpoint(), &StoredEvent::of(record)))
                    .map(|()| None),
                Err(error) => Err(Stop::Store(error)),
            }
        } else if self.filtered {
            self.store
                .fold_named(self.checkpoint, limit, &self.names, |checkpoint, event| {
                    take(checkpoint, &event)
                })
                .await
                .map(|scanned| Some(scanned.reached))
        } else {
            self.store
                .fold_all(self.checkpoint, limit, |checkpoint, event| {
                    take(checkpoint, &event)
                })
                .await
                .map(|_| None)
        };
        match outcome {
            // Past the events of other names the store did not send.
            Ok(reached) => read.last = read.last.max(reached.unwrap_or(read.last)),
            // The events before a failed read's error are applied; the error comes after.
            Err(stop) => read.stop = Some(stop),
        }
        Ok(read)
    }

    /// Applies what was read and commits it with the checkpoint. Returns the failed
    /// handler's event, whose batch was not committed.
    async fn apply(
        &mut self,
        described: Described,
        read: Read,
    ) -> Result<Option<Failed>, ProjectionError> {
        let mut keys: Vec<String> = read.items.iter().map(|item| item.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        // Dead letters: each document whose event was dead-lettered waits, its later
        // events parked behind it in order; the other documents go on. Read before the
        // documents, so a document a retry settled meanwhile is read as the retry left it.
        let mut parked: HashMap<String, u64> = HashMap::new();
        let mut held = HashSet::new();
        if described.dead_letters {
            let stored = self
                .store
                .dead_letters(&self.slot)
                .await
                .map_err(|e| self.store_error(e))?;
            for letter in stored {
                held.insert(letter.checkpoint.position);
                let behind = letter.behind.unwrap_or(letter.checkpoint.position);
                parked.entry(letter.key).or_insert(behind);
            }
        }
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
        let mut letters = Vec::new();
        let now = chrono::Utc::now();
        let mut touched = Vec::with_capacity(keys.len());
        for item in read.items {
            let dead_letter = |error: String, attempts, first, behind| DeadLetter {
                projection: described.name.to_owned(),
                version: described.version,
                checkpoint: item.checkpoint,
                stream: item.stream.clone(),
                stream_version: item.stream_version,
                event: item.name.clone(),
                event_version: item.version,
                key: item.key.clone(),
                error,
                attempts,
                first_failed_at: first,
                last_failed_at: now,
                behind,
            };
            if let Some(&behind) = parked.get(&item.key) {
                let why = format!("waits behind the dead letter at global position {behind}");
                letters.push(dead_letter(why, 0, now, Some(behind)));
                continue;
            }
            if let Some(poison) = self
                .poison
                .as_ref()
                .filter(|p| p.position == item.checkpoint.position)
            {
                letters.push(dead_letter(
                    poison.error.clone(),
                    poison.attempts,
                    poison.first_failed_at,
                    None,
                ));
                parked.insert(item.key.clone(), item.checkpoint.position);
                tracing::warn!(projection = described.name, key = %item.key, position = item.checkpoint.position, "event dead-lettered; its document's later events wait behind it");
                continue;
            }
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
                Change::Keep => Some(encode(described, &key, &document)?),
            };
            changes.push((key, body));
        }
        if !letters.is_empty() {
            // Those parked by a try of this batch that did not commit are held already.
            let fresh = letters
                .iter()
                .filter(|l| !held.contains(&l.checkpoint.position))
                .count();
            if held.len() + fresh > self.options.max_dead_letters {
                return Err(ProjectionError::DeadLettersFull {
                    projection: described.name.to_owned(),
                    max: self.options.max_dead_letters,
                });
            }
            // Parked before the commit, each letter once: a batch that does not commit
            // parks the same letters when it is tried again.
            self.store
                .park(&self.slot, &letters)
                .await
                .map_err(|e| self.store_error(e))?;
            super::metrics::dead_letters(described.name, described.version, fresh);
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
}

/// A handler that failed, and how far into the read its event was.
struct Failed {
    ordinal: usize,
    error: ProjectionError,
}

fn encode(described: Described, key: &str, document: &Erased) -> Result<String, ProjectionError> {
    let written = (described.write_document)(document).unwrap_or_else(|| {
        Err(serde::ser::Error::custom(
            "the document is not of the projection's type",
        ))
    });
    written.map_err(|source| ProjectionError::Document {
        projection: described.name.to_owned(),
        key: key.to_owned(),
        source,
    })
}
