//! Snapshots taken by the repository: when one is due, and writing it off the caller's path.

use chrono::Utc;
use tracing::Instrument;

use crate::aggregate::Aggregate;
use crate::store::{EventStore, SnapshotRecord};

use super::Repository;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Writes a snapshot of `state` at `version` in a task of its own: the caller does not
    /// wait for it, and a failure is logged, never returned (guarantee 6).
    pub(super) fn snapshot_later(&self, stream: &str, state: &A, version: u64) {
        let state = match state.encode_snapshot() {
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(stream, version, %error, "cannot serialise snapshot; none taken");
                return;
            }
            None => return,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let record = SnapshotRecord {
            stream_id: stream.to_owned(),
            version,
            fingerprint: A::SNAPSHOT_FINGERPRINT,
            state,
            taken_at: Utc::now(),
        };
        let store = self.store.clone();
        runtime.spawn(
            async move {
                match store.write_snapshot(record).await {
                    Ok(()) => tracing::debug!("snapshot written"),
                    Err(error) => tracing::warn!(%error, "cannot write snapshot; loads replay more events until the next one"),
                }
            }
            .instrument(tracing::debug_span!("annals.snapshot", stream = %stream, version)),
        );
    }
}

/// Whether a state at `version`, loaded from a snapshot at `base` (0: none), deserves a
/// new snapshot: N or more events past the one it came from.
pub(super) fn snapshot_due<A: Aggregate>(version: u64, base: u64) -> bool {
    A::SNAPSHOT_EVERY.is_some_and(|every| version >= base.saturating_add(every))
}

/// Whether an append from version `from` to `to` reaches a multiple of N.
pub(super) fn crosses_multiple<A: Aggregate>(from: u64, to: u64) -> bool {
    A::SNAPSHOT_EVERY.is_some_and(|every| from / every < to / every)
}
