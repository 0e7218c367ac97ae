//! The repository's errors: a load or an append that failed, and a command's outcome.

use crate::event::DecodeError;
use crate::store::StoreError;

/// The repository's error: an aggregate that could not be loaded, or events that could not
/// be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded; it is never skipped.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An event produced by a command could not be serialised.
    #[error("cannot serialise event `{name}` for stream `{stream}`: {source}")]
    Encode {
        /// The stream the event was for.
        stream: String,
        /// The event's name.
        name: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored stream whose versions do not run 1, 2, 3, ...: a version is missing or
    /// repeated. annals never writes such a stream; another tool did.
    #[error(
        "stream `{stream}` has version {found} after version {previous} (global position \
         {position}): a stream's versions run from 1 without a gap or a repeat, so it was \
         written outside annals"
    )]
    BrokenStream {
        /// The stream read.
        stream: String,
        /// The version the state was at.
        previous: u64,
        /// The version stored next.
        found: u64,
        /// The global position of that event.
        position: u64,
    },
    /// `load_at_version` asked for a version the stream has not reached.
    #[error("stream `{stream}` has no version {requested} (its current version is {current})")]
    VersionNotFound {
        /// The stream read.
        stream: String,
        /// The version asked for.
        requested: u64,
        /// The stream's current version.
        current: u64,
    },
    /// Every attempt of a command met a concurrent append.
    #[error(
        "command on stream `{stream}` conflicted with concurrent appends {attempts} times; \
         last seen version {actual}"
    )]
    RetriesExhausted {
        /// The contended stream.
        stream: String,
        /// How many times the command was tried.
        attempts: u32,
        /// The version found on the last attempt.
        actual: u64,
    },
}

/// The outcome of a failed [`Repository::execute`]: the domain said no, or something broke.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The aggregate rejected the command with its domain error.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// Loading or appending failed.
    #[error(transparent)]
    Failed(#[from] RepositoryError),
}

impl<E> ExecuteError<E> {
    /// The domain error, when the command was rejected.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            Self::Rejected(e) => Some(e),
            Self::Failed(_) => None,
        }
    }
}
