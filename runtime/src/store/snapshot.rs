//! Snapshots as a store keeps them.

use chrono::{DateTime, Utc};

use crate::event::RecordedEvent;

/// A stored snapshot: an aggregate's state, serialised, right after stream version `version`.
///
/// Snapshots are a cache (guarantee 6): the store keeps the newest one per stream, and the
/// repository ignores any that is corrupt, of another fingerprint, or ahead of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The stream the state was folded from.
    pub stream_id: String,
    /// The stream version the state reflects (at least 1).
    pub version: u64,
    /// The aggregate's snapshot fingerprint (state type, `#[apply]` code, manual version).
    pub fingerprint: u64,
    /// The state as JSON text, as written (it may be corrupt: the reader checks).
    pub state: String,
    /// When the snapshot was taken.
    pub taken_at: DateTime<Utc>,
}

/// What [`EventStore::read_from_snapshot`] found: a usable snapshot, if any, and the
/// events after it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRead {
    /// The stream's snapshot, when it has the fingerprint asked for, is not beyond the
    /// version asked for and not beyond the stream's last event.
    pub snapshot: Option<SnapshotRecord>,
    /// The events after the snapshot (after version 0 without one), up to the version
    /// asked for, in version order.
    pub events: Vec<RecordedEvent>,
}
