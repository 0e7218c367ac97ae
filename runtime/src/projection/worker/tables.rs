//! A batch of a SQL-table projection, and the events it sets aside when it keeps dead
//! letters: there the order to keep is the stream's.

use std::collections::{HashMap, HashSet};

use super::Worker;
use crate::event::Checkpoint;
use crate::projection::sql::{Owned, SqlOutcome, SqlRun};
use crate::projection::{DeadLetter, ProjectionError, ProjectionStore};
use crate::store::StoreError;

impl<S: ProjectionStore> Worker<S> {
    /// A batch of a SQL-table projection: the events read first, then applied and the
    /// checkpoint moved in one transaction.
    pub(super) async fn tables(&mut self, run: &dyn SqlRun<S>) -> Result<usize, ProjectionError> {
        let handled: HashSet<(&'static str, u32)> = run.consumes().into_iter().collect();
        let (mut events, mut last, mut seen) = (Vec::new(), self.checkpoint, 0usize);
        // Each handled event with the checkpoint of the event before it in the log, and
        // its own.
        let mut keep = |checkpoint: Checkpoint, owned: Option<Owned>| {
            if let Some(owned) = owned {
                events.push((last, checkpoint, owned));
            }
            last = checkpoint;
            seen += 1;
        };
        let limit = self.options.batch_size;
        if run.reads_metadata() {
            let records = self
                .store
                .read_all(self.checkpoint, limit)
                .await
                .map_err(|e| self.store_error(e))?;
            for record in records {
                let checkpoint = record.checkpoint();
                let wanted = handled.contains(&(record.name.as_str(), record.version));
                keep(checkpoint, wanted.then_some(Owned::Full(record)));
            }
        } else {
            let scanned = self
                .store
                .fold_named(self.checkpoint, limit, &self.names, |checkpoint, event| {
                    let wanted = handled.contains(&(event.name, event.version));
                    keep(
                        checkpoint,
                        wanted.then(|| Owned::Lean {
                            stream_id: event.stream_id.to_owned(),
                            stream_version: event.stream_version,
                            position: event.position,
                            name: event.name.to_owned(),
                            version: event.version,
                            payload: event.payload.to_owned(),
                        }),
                    );
                    Ok::<_, StoreError>(())
                })
                .await
                .map_err(|e| self.store_error(e))?;
            // Past the events of other names the store did not send.
            last = last.max(scanned.reached);
        }
        if last == self.checkpoint {
            return Ok(seen);
        }
        let events = if run.dead_letters() {
            self.set_aside(run, events).await?
        } else {
            events
                .into_iter()
                .map(|(before, _, owned)| (before, owned))
                .collect()
        };
        match run
            .batch(&self.store, &self.slot, self.checkpoint, last, &events)
            .await?
        {
            SqlOutcome::Committed => {
                self.checkpoint = last;
                Ok(seen)
            }
            SqlOutcome::Fenced => Err(ProjectionError::Fenced {
                projection: run.name().to_owned(),
                expected: self.checkpoint,
            }),
            SqlOutcome::Failed(index, error) => {
                // Everything before the failed event commits without it.
                let before = events[index].0;
                if before != self.checkpoint {
                    match run
                        .batch(
                            &self.store,
                            &self.slot,
                            self.checkpoint,
                            before,
                            &events[..index],
                        )
                        .await?
                    {
                        SqlOutcome::Committed => self.checkpoint = before,
                        SqlOutcome::Fenced => {
                            return Err(ProjectionError::Fenced {
                                projection: run.name().to_owned(),
                                expected: self.checkpoint,
                            });
                        }
                        SqlOutcome::Failed(_, again) => return Err(again),
                    }
                }
                Err(error)
            }
        }
    }

    /// Sets aside the poison event, and every event of a stream that has a dead letter
    /// (parked behind it, in order); returns the others, each with the checkpoint before
    /// it, for the batch.
    async fn set_aside(
        &self,
        run: &dyn SqlRun<S>,
        events: Vec<(Checkpoint, Checkpoint, Owned)>,
    ) -> Result<Vec<(Checkpoint, Owned)>, ProjectionError> {
        let stored = self
            .store
            .dead_letters(&self.slot)
            .await
            .map_err(|e| self.store_error(e))?;
        let held: HashSet<u64> = stored.iter().map(|l| l.checkpoint.position).collect();
        let mut parked: HashMap<String, u64> = HashMap::new();
        for letter in stored {
            let behind = letter.behind.unwrap_or(letter.checkpoint.position);
            parked.entry(letter.key).or_insert(behind);
        }
        let now = chrono::Utc::now();
        let (mut kept, mut letters) = (Vec::with_capacity(events.len()), Vec::new());
        for (before, at, owned) in events {
            let event = owned.view();
            let poison = self.poison.as_ref().filter(|p| p.position == at.position);
            let behind = parked.get(event.stream_id).copied();
            if behind.is_none() && poison.is_none() {
                kept.push((before, owned));
                continue;
            }
            let (error, attempts, first) = match (behind, poison) {
                (Some(behind), _) => (
                    format!("waits behind the dead letter at global position {behind}"),
                    0,
                    now,
                ),
                (None, Some(poison)) => {
                    tracing::warn!(
                        projection = run.name(),
                        stream = event.stream_id,
                        position = at.position,
                        "event dead-lettered; its stream's later events wait behind it"
                    );
                    (
                        poison.error.clone(),
                        poison.attempts,
                        poison.first_failed_at,
                    )
                }
                (None, None) => continue,
            };
            letters.push(DeadLetter {
                projection: run.name().to_owned(),
                version: run.version(),
                checkpoint: at,
                stream: event.stream_id.to_owned(),
                stream_version: event.stream_version,
                event: event.name.to_owned(),
                event_version: event.version,
                key: event.stream_id.to_owned(),
                error,
                attempts,
                first_failed_at: first,
                last_failed_at: now,
                behind,
            });
            parked
                .entry(event.stream_id.to_owned())
                .or_insert(at.position);
        }
        if !letters.is_empty() {
            let fresh = letters
                .iter()
                .filter(|l| !held.contains(&l.checkpoint.position))
                .count();
            if held.len() + fresh > self.options.max_dead_letters {
                return Err(ProjectionError::DeadLettersFull {
                    projection: run.name().to_owned(),
                    max: self.options.max_dead_letters,
                });
            }
            self.store
                .park(&self.slot, &letters)
                .await
                .map_err(|e| self.store_error(e))?;
            crate::projection::metrics::dead_letters(run.name(), run.version(), fresh);
        }
        Ok(kept)
    }
}
