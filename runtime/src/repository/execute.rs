//! Executing a command: bet or load, decide, append, and retry on a conflict.

use std::time::Duration;

use tracing::Instrument;

use crate::aggregate::{Aggregate, Handle};
use crate::command::CommandContext;
use crate::event::{EventSet, NewEvent};
use crate::store::{EventStore, ExpectedVersion, StoreError, StoreSession};

use super::cache::Entry;
use super::load::{catch_up, load_in};
use super::snapshot::{crosses_multiple, snapshot_due};
use super::{ExecuteError, Executed, Repository, RepositoryError};

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Runs `command` against aggregate `id` in a new conversation.
    ///
    /// See [`execute_with`](Self::execute_with).
    pub async fn execute<C>(
        &self,
        id: &str,
        command: C,
    ) -> Result<Executed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Send + Sync,
    {
        self.execute_with(id, command, &CommandContext::new()).await
    }

    /// Runs `command` against aggregate `id`: load, decide, append with the loaded version
    /// as the expected version. When another writer appended in between, reloads and
    /// decides again, up to the configured number of attempts, with jittered backoff.
    ///
    /// Commands on one aggregate through this repository (or its clones) take turns, in
    /// the order they arrive, instead of racing each other to a conflict: conflicts come
    /// only from other writers (another process, another repository). Commands on other
    /// aggregates do not wait. A command handler must therefore not execute another
    /// command on its own aggregate through the same repository.
    pub async fn execute_with<C>(
        &self,
        id: &str,
        command: C,
        ctx: &CommandContext,
    ) -> Result<Executed<A::Event>, ExecuteError<A::Error>>
    where
        A: Handle<C>,
        C: Send + Sync,
    {
        let stream = A::stream_id(id);
        let span = tracing::debug_span!(
            "annals.execute",
            stream = %stream,
            command = std::any::type_name::<C>(),
            correlation_id = %ctx.correlation_id(),
        );
        let run = Run {
            repository: self,
            stream: &stream,
            command: &command,
            ctx,
        };
        run.run().instrument(span).await
    }
}

/// One command's execution against one stream.
struct Run<'r, A, S, C> {
    repository: &'r Repository<A, S>,
    stream: &'r str,
    command: &'r C,
    ctx: &'r CommandContext,
}

/// What deciding against a state came to.
enum Decision<A: Aggregate, C>
where
    A: Handle<C>,
{
    /// Events to append on top of the state.
    Record(Entry<A>, Vec<A::Event>),
    /// The command is finished: rejected, or nothing to record.
    Finished(Result<Executed<A::Event>, ExecuteError<A::Error>>),
    /// A bet that the stream is new decided nothing: the real state must decide.
    BetLost,
}

/// What appending the decided events came to.
enum Appended<A: Aggregate> {
    Done(Executed<A::Event>),
    /// Another writer appended first: the stream is at `actual`, not at the entry's version.
    Conflict {
        entry: Entry<A>,
        actual: u64,
    },
    /// Another writer held the store's lock too long; nothing was written.
    Busy {
        entry: Entry<A>,
        error: StoreError,
    },
}

impl<A, S, C> Run<'_, A, S, C>
where
    A: Aggregate + Handle<C>,
    S: EventStore,
    C: Send + Sync,
{
    async fn run(self) -> Result<Executed<A::Event>, ExecuteError<A::Error>> {
        // Commands on one aggregate take turns: racing each other would only conflict.
        let _turn = self.repository.turns.take(self.stream).await;
        // One connection for the whole command, retries included.
        let mut session = self
            .repository
            .store
            .session()
            .await
            .map_err(RepositoryError::from)?;
        let mut current = self.repository.cache_take(self.stream);
        // A creating command on an aggregate not in the cache bets that the stream is new:
        // it decides against the default state and appends expecting no stream, skipping
        // the read. Anything else the bet gives (a rejection, no events, a conflict) says
        // nothing about the real state, so that state is loaded and the command decides
        // again; the bet is not an attempt.
        let mut betting = <A as Handle<C>>::CREATES && current.is_none();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entry = match current.take() {
                Some(entry) => entry,
                None if betting => Entry::bet(),
                None => self.load(&mut session).await?,
            };
            let (entry, events) = match self.decide(entry, betting, attempt).await {
                Decision::Record(entry, events) => (entry, events),
                Decision::Finished(result) => return result,
                Decision::BetLost => {
                    (betting, attempt) = (false, 0);
                    continue;
                }
            };
            match self.append(&mut session, entry, events, attempt).await? {
                Appended::Done(executed) => return Ok(executed),
                Appended::Conflict { actual, .. } if betting => {
                    tracing::debug!(actual, "the stream a creating command bet was new exists");
                    (betting, attempt) = (false, 0);
                }
                Appended::Conflict { entry, actual } => {
                    current = self.retry(&mut session, entry, actual, attempt).await?;
                }
                // The state is still the stream's as far as anyone knows: try the append
                // again after a pause, an attempt like any other.
                Appended::Busy { entry, error } => {
                    if attempt >= self.repository.max_attempts {
                        return Err(RepositoryError::Store(error).into());
                    }
                    tracing::debug!(attempt, %error, "store busy, retrying");
                    backoff(attempt).await;
                    current = Some(entry);
                }
            }
        }
    }

    /// Load: the aggregate's state from the store (its snapshot and the events after it).
    async fn load(&self, session: &mut S::Session<'_>) -> Result<Entry<A>, RepositoryError> {
        let (loaded, base) = load_in::<A, _>(session, self.stream, u64::MAX).await?;
        Ok(Entry {
            state: loaded.state,
            version: loaded.version,
            base,
        })
    }

    /// Decide: the command against the state. A rejection or an empty decision ends the
    /// command and puts the state back in the cache unchanged.
    async fn decide(&self, entry: Entry<A>, betting: bool, attempt: u32) -> Decision<A, C> {
        let decided = entry.state.handle(self.command).await;
        if betting && !matches!(&decided, Ok(events) if !events.is_empty()) {
            return Decision::BetLost;
        }
        match decided {
            Err(rejection) => {
                self.repository.cache_put(self.stream, entry);
                Decision::Finished(Err(ExecuteError::Rejected(rejection)))
            }
            Ok(events) if events.is_empty() => {
                let stream_version = entry.version;
                self.repository.cache_put(self.stream, entry);
                Decision::Finished(Ok(Executed {
                    events,
                    stream_version,
                    last_position: None,
                    last_checkpoint: None,
                    attempts: attempt,
                }))
            }
            Ok(events) => Decision::Record(entry, events),
        }
    }

    /// Append: the events, expecting the stream at the state's version. On success the
    /// state moves on, goes back into the cache, and a snapshot is taken when one is due.
    async fn append(
        &self,
        session: &mut S::Session<'_>,
        entry: Entry<A>,
        events: Vec<A::Event>,
        attempt: u32,
    ) -> Result<Appended<A>, RepositoryError> {
        let batch = encode(self.stream, &events, self.ctx)?;
        let expected = ExpectedVersion::Exact(entry.version);
        let done = match session.append(self.stream, expected, batch).await {
            Ok(done) => done,
            Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                return Ok(Appended::Conflict { entry, actual });
            }
            Err(error @ StoreError::Busy { .. }) => return Ok(Appended::Busy { entry, error }),
            Err(error) => return Err(error.into()),
        };
        tracing::debug!(version = done.stream_version, attempt, "command recorded");
        let Entry {
            mut state,
            version,
            mut base,
        } = entry;
        for event in &events {
            state.apply(event);
        }
        if !done.already_stored {
            // Every multiple of N gets its snapshot, however late the previous one lands;
            // a stale or unusable one is replaced too.
            if snapshot_due::<A>(done.stream_version, base)
                || crosses_multiple::<A>(version, done.stream_version)
            {
                self.repository
                    .snapshot_later(self.stream, &state, done.stream_version);
                base = done.stream_version;
            }
            let version = done.stream_version;
            self.repository.cache_put(
                self.stream,
                Entry {
                    state,
                    version,
                    base,
                },
            );
        }
        Ok(Appended::Done(Executed {
            events,
            stream_version: done.stream_version,
            last_position: Some(done.last_position),
            last_checkpoint: Some(done.last_checkpoint()),
            attempts: attempt,
        }))
    }

    /// Retry: read only what the state missed, then decide again: at once the first time
    /// (a stale cache entry, or one lost race), after a growing random pause when writers
    /// keep colliding, until the attempts run out. `None`: the events read do not follow
    /// the state, so the next attempt loads the stream.
    async fn retry(
        &self,
        session: &mut S::Session<'_>,
        entry: Entry<A>,
        actual: u64,
        attempt: u32,
    ) -> Result<Option<Entry<A>>, RepositoryError> {
        if attempt >= self.repository.max_attempts {
            return Err(RepositoryError::RetriesExhausted {
                stream: self.stream.to_owned(),
                attempts: attempt,
                actual,
            });
        }
        tracing::debug!(
            expected = entry.version,
            actual,
            attempt,
            "conflict, retrying"
        );
        if attempt > 1 {
            backoff(attempt).await;
        }
        catch_up(session, self.stream, entry).await
    }
}

impl<A: Aggregate, S> Repository<A, S> {
    fn cache_take(&self, stream: &str) -> Option<Entry<A>> {
        self.cache.as_ref().and_then(|cache| cache.take(stream))
    }

    pub(super) fn cache_put(&self, stream: &str, entry: Entry<A>) {
        if let Some(cache) = &self.cache {
            cache.put(stream, entry);
        }
    }
}

/// The decided events as the store takes them, each carrying the command's metadata.
fn encode<E: EventSet>(
    stream: &str,
    events: &[E],
    ctx: &CommandContext,
) -> Result<Vec<NewEvent>, RepositoryError> {
    events
        .iter()
        .map(|event| {
            NewEvent::from_set(event)
                .map(|e| e.with_metadata(ctx.metadata().clone()))
                .map_err(|source| RepositoryError::Encode {
                    stream: stream.to_owned(),
                    name: event.event_name(),
                    source,
                })
        })
        .collect()
}

/// Sleeps a random time that grows with the attempt, so contending writers spread out
/// instead of colliding again in lockstep.
async fn backoff(attempt: u32) {
    let ceiling_us = 100u64 << attempt.min(7);
    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=ceiling_us))).await;
}
