//! The values of the contract: expected versions, version ranges, append results.

use std::fmt;
use std::ops::{Bound, RangeBounds};

use crate::event::Checkpoint;

/// The stream version an append expects to find, checked atomically with the write.
///
/// Stream versions start at 1 for the first event; version 0 means "no stream".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet (same as `Exact(0)`).
    NoStream,
    /// The stream must be exactly at this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(v) => actual == v,
        }
    }

    /// The one version this expectation accepts (`NoStream`: 0); `None` for `Any`. Only
    /// such appends can join a group commit, which checks each against its version.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn exact(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exact(v) => Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream | Self::Exact(0) => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append (the last appended event's version).
    pub stream_version: u64,
    /// The global position of the first appended event.
    pub first_position: u64,
    /// The global position of the last appended event.
    pub last_position: u64,
    /// The id of the transaction that appended the last event: with `last_position`, the
    /// last event's place in the global order (see [`last_checkpoint`](Self::last_checkpoint)).
    pub transaction_id: u64,
    /// True when every event id was already stored: nothing was written and the
    /// positions are those of the original append.
    pub already_stored: bool,
}

impl AppendResult {
    /// Where the last appended event is in the global order: what a reader waits for to
    /// see this append (read-your-writes).
    pub fn last_checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            position: self.last_position,
        }
    }
}

/// An inclusive range of stream versions to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    /// First version to read (at least 1).
    pub from: u64,
    /// Last version to read, inclusive.
    pub to: u64,
}

impl VersionRange {
    /// Normalises any range of versions (`..`, `5..`, `..=10`, `3..7`).
    pub fn new(range: impl RangeBounds<u64>) -> Self {
        let from = match range.start_bound() {
            Bound::Included(&v) => v,
            Bound::Excluded(&v) => v.saturating_add(1),
            Bound::Unbounded => 1,
        };
        let to = match range.end_bound() {
            Bound::Included(&v) => v,
            Bound::Excluded(&v) => v.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        Self {
            from: from.max(1),
            to,
        }
    }

    /// Whether `version` lies in the range.
    pub fn contains(&self, version: u64) -> bool {
        self.from <= version && version <= self.to
    }
}
