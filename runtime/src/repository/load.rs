//! The load paths: the current state, the state at a version or a time, the history, and
//! the fold of stored events into a state that every one of them shares.

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::event::{Envelope, EventSet, RecordedEvent, StoredEvent};
use crate::store::{EventStore, SnapshotRead, StoreSession, VersionRange};

use super::cache::Entry;
use super::snapshot::snapshot_due;
use super::{Loaded, Repository, RepositoryError};

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Loads the current state of aggregate `id` (the default state if it has no events).
    ///
    /// With `snapshot_every = N`, starts from the stream's snapshot when it is usable, and
    /// writes a new one (off the caller's path) when the state is N or more events past it.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError> {
        let stream = A::stream_id(id);
        let (loaded, base) = load_in(&mut self.store.session().await?, &stream, u64::MAX).await?;
        if snapshot_due::<A>(loaded.version, base) {
            self.snapshot_later(&stream, &loaded.state, loaded.version);
        }
        Ok(loaded)
    }

    /// Loads the state as it was right after stream version `version` (0 is the empty state).
    ///
    /// Uses the snapshot only when it is not newer than `version`.
    pub async fn load_at_version(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Loaded<A>, RepositoryError> {
        let stream = A::stream_id(id);
        let (loaded, _) = load_in(&mut self.store.session().await?, &stream, version).await?;
        if loaded.version < version {
            return Err(RepositoryError::VersionNotFound {
                stream,
                requested: version,
                current: loaded.version,
            });
        }
        Ok(loaded)
    }

    /// Loads the state as it was at `time`: every event recorded at or before it.
    ///
    /// Uses the snapshot only when the event after it was recorded at or before `time`
    /// (recording times grow with the version), so the snapshot is not newer than `time`.
    pub async fn load_as_of(
        &self,
        id: &str,
        time: DateTime<Utc>,
    ) -> Result<Loaded<A>, RepositoryError> {
        let stream = A::stream_id(id);
        let mut read = if A::SNAPSHOT_EVERY.is_some() {
            self.store
                .read_from_snapshot(&stream, A::SNAPSHOT_FINGERPRINT, u64::MAX)
                .await?
        } else {
            SnapshotRead {
                snapshot: None,
                events: self.store.read_stream(&stream, ..).await?,
            }
        };
        // Without a snapshot the read holds the whole stream: no second read is needed.
        let usable =
            read.snapshot.is_none() || read.events.first().is_some_and(|e| e.recorded_at <= time);
        if usable {
            read.events
                .truncate(read.events.partition_point(|r| r.recorded_at <= time));
            if let Some((loaded, _)) = resume::<A>(&stream, read)? {
                return Ok(loaded);
            }
        }
        // The snapshot is newer than `time`, or does not decode: replay from the start.
        let records = self.store.read_stream(&stream, ..).await?;
        let upto = records.partition_point(|r| r.recorded_at <= time);
        fold(Loaded::default(), &records[..upto])
    }

    /// The aggregate's audit trail: every event, decoded, with its full record.
    pub async fn history(&self, id: &str) -> Result<Vec<Envelope<A::Event>>, RepositoryError> {
        let stream = A::stream_id(id);
        let records = self.store.read_stream(&stream, ..).await?;
        let mut version = 0;
        records
            .into_iter()
            .map(|record| {
                follows(version, &StoredEvent::of(&record))?;
                version = record.stream_version;
                Ok(Envelope {
                    event: record.decode()?,
                    record,
                })
            })
            .collect()
    }
}

/// Brings `entry` up to date with the events appended after its version. `None` when they
/// do not follow on (the caller reloads the stream).
pub(super) async fn catch_up<A: Aggregate, T: StoreSession>(
    session: &mut T,
    stream: &str,
    mut entry: Entry<A>,
) -> Result<Option<Entry<A>>, RepositoryError> {
    let mut follows = true;
    let after = VersionRange::new(entry.version + 1..);
    fold_events::<A, _>(session, stream, after, |event| {
        follows &= event.stream_version == entry.version + 1;
        if follows {
            apply_stored(&mut entry.state, &mut entry.version, event)?;
        }
        Ok(())
    })
    .await?;
    Ok(follows.then_some(entry))
}

/// Loads the state up to version `to`, from the snapshot when the aggregate takes them and
/// it is usable, by full replay otherwise. Also returns the snapshot's version (0: none).
pub(super) async fn load_in<A: Aggregate, T: StoreSession>(
    session: &mut T,
    stream: &str,
    to: u64,
) -> Result<(Loaded<A>, u64), RepositoryError> {
    if A::SNAPSHOT_EVERY.is_some() {
        let read = session
            .read_from_snapshot(stream, A::SNAPSHOT_FINGERPRINT, to)
            .await?;
        if let Some(loaded) = resume::<A>(stream, read)? {
            return Ok(loaded);
        }
    }
    let mut loaded = Loaded::<A>::default();
    fold_events::<A, _>(session, stream, VersionRange::new(..=to), |event| {
        apply_stored(&mut loaded.state, &mut loaded.version, event)
    })
    .await?;
    Ok((loaded, 0))
}

/// Feeds the stream's events in `range` to `f`: lean rows, unless an upcaster of the
/// aggregate's events reads the stored record, which only full records carry.
async fn fold_events<A: Aggregate, T: StoreSession>(
    session: &mut T,
    stream: &str,
    range: VersionRange,
    mut f: impl FnMut(StoredEvent<'_>) -> Result<(), RepositoryError> + Send,
) -> Result<(), RepositoryError> {
    if <A::Event as EventSet>::reads_record() {
        let records = session.read_stream(stream, range).await?;
        records
            .iter()
            .try_for_each(|record| f(StoredEvent::of(record)))
    } else {
        session.fold_stream(stream, range, f).await
    }
}

/// Folds what `read_from_snapshot` returned. `None` when the snapshot cannot be used (it
/// does not decode, or the events do not follow it): the caller replays the whole stream.
fn resume<A: Aggregate>(
    stream: &str,
    read: SnapshotRead,
) -> Result<Option<(Loaded<A>, u64)>, RepositoryError> {
    let Some(snapshot) = read.snapshot else {
        return Ok(Some((fold(Loaded::default(), &read.events)?, 0)));
    };
    let version = snapshot.version;
    if read
        .events
        .first()
        .is_some_and(|e| e.stream_version != version + 1)
    {
        tracing::warn!(
            stream,
            version,
            "events do not follow the snapshot; replaying the stream"
        );
        return Ok(None);
    }
    match A::decode_snapshot(&snapshot.state) {
        Some(Ok(state)) => {
            let loaded = fold(Loaded { state, version }, &read.events)?;
            Ok(Some((loaded, version)))
        }
        Some(Err(error)) => {
            tracing::warn!(stream, version, %error, "snapshot does not decode; replaying the stream");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Applies `records` on top of `loaded`.
fn fold<A: Aggregate>(
    mut loaded: Loaded<A>,
    records: &[RecordedEvent],
) -> Result<Loaded<A>, RepositoryError> {
    for record in records {
        let Loaded { state, version } = &mut loaded;
        apply_stored(state, version, StoredEvent::of(record))?;
    }
    Ok(loaded)
}

/// Decodes one stored event and applies it: every load path goes through here. The event
/// must be the one after `version`: a stream with a gap or a repeated version is an error,
/// never a state folded from part of it.
fn apply_stored<A: Aggregate>(
    state: &mut A,
    version: &mut u64,
    event: StoredEvent<'_>,
) -> Result<(), RepositoryError> {
    follows(*version, &event)?;
    let decoded = event.decode::<A::Event>()?;
    state.apply(&decoded);
    *version = event.stream_version;
    Ok(())
}

/// Checks that `event` is the next one after `version`.
fn follows(version: u64, event: &StoredEvent<'_>) -> Result<(), RepositoryError> {
    if event.stream_version == version.saturating_add(1) {
        return Ok(());
    }
    Err(RepositoryError::BrokenStream {
        stream: event.stream_id.to_owned(),
        previous: version,
        found: event.stream_version,
        position: event.position,
    })
}
