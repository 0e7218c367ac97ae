//! The read side's errors.

use std::time::Duration;

use crate::event::{Checkpoint, DecodeError};
use crate::store::StoreError;

/// A handler's failure: its error's text, or its panic's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What the handler said.
    pub message: String,
}

impl HandlerError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// A handler's panic, as a failure: its message, when it has one.
    pub(crate) fn panicked(panic: &(dyn std::any::Any + Send)) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Self::new(format!("the handler panicked: {message}"))
    }
}

/// Why a projection could not go on. Every variant names the projection, and those about
/// one event name its stream, version and global position.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The store failed.
    #[error("projection `{projection}`: {source}")]
    Store {
        /// The projection.
        projection: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A stored event the projection consumes does not decode. Never skipped: the
    /// projection stops before it.
    #[error("projection `{projection}`: {source}")]
    Decode {
        /// The projection.
        projection: String,
        /// Which event, where, and why.
        #[source]
        source: DecodeError,
    },
    /// A handler returned an error or panicked. The projection stops before the event:
    /// everything before it is committed, nothing of it or after it.
    #[error(
        "projection `{projection}`: the handler of `{event}` failed at version {stream_version} \
         of stream `{stream}` (global position {position}): {source}"
    )]
    Handler {
        /// The projection.
        projection: String,
        /// The stream holding the event.
        stream: String,
        /// The event's version in its stream.
        stream_version: u64,
        /// The event's global position.
        position: u64,
        /// The stored event name.
        event: String,
        /// What the handler said.
        #[source]
        source: HandlerError,
    },
    /// A SQL projection's `#[setup]` or `#[reset]` failed.
    #[error("projection `{projection}`: its `#[setup]` or `#[reset]` failed: {source}")]
    Setup {
        /// The projection.
        projection: String,
        /// What the hook said.
        #[source]
        source: HandlerError,
    },
    /// A stored document does not read back as the projection's state, or the state does
    /// not serialise.
    #[error("projection `{projection}`: document `{key}`: {source}")]
    Document {
        /// The projection.
        projection: String,
        /// The document's key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The stored checkpoint moved while this runner worked on a batch: another runner
    /// committed it. Nothing of the batch was written.
    #[error(
        "projection `{projection}`: its checkpoint is no longer {expected}; another runner \
         has committed past it, and this batch was not written"
    )]
    Fenced {
        /// The projection.
        projection: String,
        /// The checkpoint this runner started the batch from.
        expected: Checkpoint,
    },
    /// The projection is applied inline, inside each append, by the stores that append:
    /// it is never behind the log, and a rebuild beside it would miss the appends made
    /// while it ran.
    #[error(
        "projection `{projection}` is applied inline, inside each append: it cannot be rebuilt \
         beside its live documents"
    )]
    Inline {
        /// The projection.
        projection: String,
    },
    /// A read of a new version of a projection that is still being built beside the
    /// version that serves: it becomes readable, all at once, when it has caught up.
    #[error(
        "projection `{projection}` v{version} is still being built; v{serving} serves its \
         readers until it has caught up"
    )]
    Building {
        /// The projection.
        projection: String,
        /// The version being built.
        version: u32,
        /// The version readers see meanwhile.
        serving: u32,
    },
    /// The projection's dead letters reached their bound: it pauses, visibly, until some
    /// are retried or discarded.
    #[error(
        "projection `{projection}` holds {max} dead letters, its bound: it waits until some are \
         retried or discarded"
    )]
    DeadLettersFull {
        /// The projection.
        projection: String,
        /// The bound (`RunnerOptions::max_dead_letters`).
        max: usize,
    },
    /// A wait for the projection to reach a checkpoint ran out of time.
    #[error(
        "projection `{projection}` did not reach {checkpoint} within {waited:?} (it is at {reached})"
    )]
    Timeout {
        /// The projection.
        projection: String,
        /// The checkpoint waited for.
        checkpoint: Checkpoint,
        /// Where the projection was when the wait ended.
        reached: Checkpoint,
        /// How long the wait lasted.
        waited: Duration,
    },
}

impl ProjectionError {
    pub(crate) fn store(projection: &str, source: StoreError) -> Self {
        Self::Store {
            projection: projection.to_owned(),
            source,
        }
    }
}
