//! Dead letters as stored: events a projection set aside, by reference, and what was done
//! with them; and the tries of a failing event, which decide when one is set aside.

use chrono::{DateTime, Utc};

use super::ProjectionError;
use crate::event::Checkpoint;

/// An event a projection did not apply: the one whose handler kept failing, or a later
/// one of the same document, parked behind it. It refers to the event in the log, by its
/// place; the payload is never copied, so erasing personal data leaves no copy here.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The projection and its version.
    pub projection: String,
    /// The projection's version.
    pub version: u32,
    /// Where the event is in the log.
    pub checkpoint: Checkpoint,
    /// Its stream.
    pub stream: String,
    /// Its version in its stream.
    pub stream_version: u64,
    /// Its stored name.
    pub event: String,
    /// Its stored schema version.
    pub event_version: u32,
    /// The document it belongs to; for a SQL-table projection, its stream.
    pub key: String,
    /// Why it was not applied: the handler's error, or the dead letter it waits behind.
    pub error: String,
    /// How many times its handler was tried (0 for an event parked behind another).
    pub attempts: u32,
    /// When it first failed (or was parked).
    pub first_failed_at: DateTime<Utc>,
    /// When it last failed (or was parked).
    pub last_failed_at: DateTime<Utc>,
    /// For a parked event, the global position of the dead letter it waits behind.
    pub behind: Option<u64>,
}

/// What was done with dead letters, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterAction {
    /// `retry` or `discard`.
    pub action: String,
    /// The document whose dead letters it was.
    pub key: String,
    /// How many dead letters it resolved.
    pub events: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// An event to dead-letter: where it is, why, and how often it failed since when.
#[derive(Clone, Debug)]
pub(crate) struct Poison {
    pub(crate) position: u64,
    pub(crate) error: String,
    pub(crate) attempts: u32,
    pub(crate) first_failed_at: chrono::DateTime<chrono::Utc>,
}

/// The tries of the event whose handler failed last, counted across batches, so that it
/// goes to the dead letters once it failed often enough.
#[derive(Default)]
pub(crate) struct Tries {
    failing: Option<Poison>,
}

impl Tries {
    /// Counts a failed batch: a handler's failure at the same event as before is one more
    /// try of it; at another event, the first.
    pub(crate) fn failed(&mut self, error: &ProjectionError) {
        let ProjectionError::Handler { position, .. } = error else {
            return;
        };
        match &mut self.failing {
            Some(poison) if poison.position == *position => {
                poison.attempts = poison.attempts.saturating_add(1);
                poison.error = error.to_string();
            }
            _ => {
                self.failing = Some(Poison {
                    position: *position,
                    error: error.to_string(),
                    attempts: 1,
                    first_failed_at: chrono::Utc::now(),
                });
            }
        }
    }

    /// The event to dead-letter instead of trying it again, once it was tried `after` times.
    pub(crate) fn poison(&self, after: u32) -> Option<Poison> {
        self.failing.clone().filter(|p| p.attempts >= after)
    }

    /// A batch went through: past the failing event, or that event dead-lettered.
    pub(crate) fn succeeded(&mut self) {
        self.failing = None;
    }
}
