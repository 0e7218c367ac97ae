//! What `#[projection]` generates code against.

use crate::event::{DecodeError, DecodeErrorKind, RecordedEvent, StoredEvent};
pub use crate::projection::{
    Change, DocumentKey, DocumentProjection, EventMeta, HandlerError, IntoChange, Projection,
    Registration, Routed,
};

/// A handled event, decoded, waiting for its document.
pub type Apply<P> = Box<dyn FnOnce(&mut P) -> Result<Change, HandlerError> + Send>;

/// The stored record behind `event`, for upcasters that read it.
pub fn record<'a>(event: &StoredEvent<'a>) -> Option<&'a RecordedEvent> {
    event.record()
}

/// A decoding failure of `event`, with where it is.
pub fn located(event: &StoredEvent<'_>, kind: DecodeErrorKind) -> DecodeError {
    DecodeError::stored(event, kind)
}

/// The metadata of `event`, which a handler takes.
pub fn meta(event: &StoredEvent<'_>) -> Result<EventMeta, DecodeError> {
    event
        .record()
        .map(EventMeta::of)
        .ok_or_else(|| DecodeError::stored(event, DecodeErrorKind::MetadataNeeded))
}

/// A handler's key expression, as stored.
pub fn key<K: DocumentKey + ?Sized>(key: &K) -> String {
    key.to_key()
}

/// The key of a handler without one: the event's stream.
pub fn stream_key(event: &StoredEvent<'_>) -> String {
    event.stream_id.to_owned()
}

/// What a handler returned, as a change.
pub fn change<T: IntoChange>(returned: T) -> Result<Change, HandlerError> {
    returned.into_change()
}

/// `P: Covers<E>`: projection `P` handles or ignores event type `E`. Generated for each
/// type a `#[projection]` names.
#[diagnostic::on_unimplemented(
    message = "projection `{Self}` neither handles nor ignores `{E}`",
    label = "`{E}` is an event of this aggregate",
    note = "add a `#[handle]` method for `{E}`, or list it in the projection's `ignore(...)`"
)]
pub trait Covers<E> {}

/// `A: CoveredBy<P>`: projection `P` covers every event type of aggregate `A`. Generated
/// by `#[aggregate]`.
pub trait CoveredBy<P> {}

/// Compiles only when projection `P` covers every event of aggregate `A`.
pub const fn covered<A: CoveredBy<P>, P>() {}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use crate::projection::{SqlFuture, SqlProjection};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sqlx::Transaction;

/// What an `async` handler of a SQL projection returned, as its outcome.
pub fn handled<T: HandlerOutcome>(returned: T) -> Result<(), HandlerError> {
    returned.outcome()
}

/// What an `async` handler of a SQL projection may return: `()`, or a `Result<(), E>`
/// whose error displays.
#[diagnostic::on_unimplemented(
    message = "a SQL projection's handler cannot return `{Self}`",
    label = "returned here",
    note = "return `()` or `Result<(), E>` where `E: Display` (such as `sqlx::Error`)"
)]
pub trait HandlerOutcome {
    /// The outcome, or the handler's failure.
    fn outcome(self) -> Result<(), HandlerError>;
}

impl HandlerOutcome for () {
    fn outcome(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: std::fmt::Display> HandlerOutcome for Result<(), E> {
    fn outcome(self) -> Result<(), HandlerError> {
        self.map_err(|e| HandlerError::new(e.to_string()))
    }
}
