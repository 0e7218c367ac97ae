//! Events: the `Event` trait, the aggregate's event set, and the records a store keeps.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// A domain event type: a plain struct with a stable name and a schema version.
///
/// Implement it with `#[derive(Event)]`; the name defaults to the struct's name and the
/// version to 1. Both are stored with every event, so renaming the Rust type never
/// orphans history.
///
/// ```
/// use annals::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// #[event(name = "MoneyDeposited", version = 2)]
/// struct Deposited { amount: u64 }
///
/// assert_eq!(<Deposited as Event>::NAME, "MoneyDeposited");
/// assert_eq!(<Deposited as Event>::VERSION, 2);
/// ```
///
/// A new version of an event is a new type that names the old one as `previous` and
/// converts it with an ordinary `From` impl, the upcaster; stored old versions then decode
/// as the new type. The compiler checks the chain (see the book's "Evolving events").
///
/// ```
/// use annals::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize)]
/// #[event(name = "MoneyDeposited", version = 1)]
/// struct DepositedV1 { amount: u64 }
///
/// #[derive(Event, Serialize, Deserialize)]
/// #[event(name = "MoneyDeposited", version = 2, previous = DepositedV1)]
/// struct Deposited { cents: u64 }
///
/// impl From<DepositedV1> for Deposited {
///     fn from(v1: DepositedV1) -> Self { Deposited { cents: v1.amount * 100 } }
/// }
///
/// let decoded = Deposited::decode_stored("MoneyDeposited", 1, r#"{"amount":2}"#).expect("in the chain")?;
/// assert_eq!(decoded.cents, 200);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "not an event",
    note = "add `#[derive(Event)]` to the definition of `{Self}`"
)]
pub trait Event: Sized + Send + Sync + 'static {
    /// The stable name stored with every event of this type.
    const NAME: &'static str;
    /// The schema version of this type, starting at 1.
    const VERSION: u32;
    /// The type this one supersedes, set with `#[event(previous = OldType)]`, or
    /// [`NoPrevious`] for the first version of an event. Stored events of the previous type
    /// (and of its own predecessors) are decoded as that type and upcast with [`Event::upcast`].
    type Previous: PreviousEvent;
    /// Turns one event of the previous version into this one: the type's
    /// `From<Self::Previous>` impl, the upcaster.
    fn upcast(previous: Self::Previous) -> Self;

    /// Decodes a stored (name, version, payload) as this type: directly when the pair is
    /// this type's own, through the upcasters when it is a previous version's; `None` when
    /// the pair is in no link of the chain.
    fn decode_stored(
        name: &str,
        version: u32,
        payload: &str,
    ) -> Option<Result<Self, DecodeErrorKind>>
    where
        Self: serde::de::DeserializeOwned,
    {
        decode_chain::<Self>(name, version, payload)
    }
}

/// The end of an upcasting chain: the predecessor of an event's first version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPrevious {}

/// A link of an upcasting chain: an event type that can stand as some event's predecessor,
/// or [`NoPrevious`].
///
/// Implemented for [`NoPrevious`] and for every deserialisable [`Event`]; not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the previous version of an event",
    label = "not a deserialisable event",
    note = "a previous version is an event type of its own: `#[derive(Event, Deserialize)]` with its `name` and `version`"
)]
pub trait PreviousEvent: Sized + Send + Sync + 'static {
    /// Decodes a stored (name, version) if it is this type or one of its predecessors, and
    /// upcasts it to `Next`.
    fn decode_upcast<Next: Event<Previous = Self>>(
        name: &str,
        version: u32,
        payload: &str,
    ) -> Option<Result<Next, DecodeErrorKind>>;
    /// The (name, version) of this link and of every one before it, newest first.
    fn chain(out: &mut Vec<(&'static str, u32)>);
}

impl PreviousEvent for NoPrevious {
    fn decode_upcast<Next: Event<Previous = Self>>(
        _: &str,
        _: u32,
        _: &str,
    ) -> Option<Result<Next, DecodeErrorKind>> {
        None
    }
    fn chain(_: &mut Vec<(&'static str, u32)>) {}
}

impl<P: Event + serde::de::DeserializeOwned> PreviousEvent for P {
    fn decode_upcast<Next: Event<Previous = Self>>(
        name: &str,
        version: u32,
        payload: &str,
    ) -> Option<Result<Next, DecodeErrorKind>> {
        decode_chain::<P>(name, version, payload).map(|r| r.map(Next::upcast))
    }
    fn chain(out: &mut Vec<(&'static str, u32)>) {
        out.push((P::NAME, P::VERSION));
        P::Previous::chain(out);
    }
}

/// Decodes a stored (name, version, payload) as `T` if the pair is `T`'s own or one of its
/// predecessors', upcasting step by step; `None` when the pair is in no link of the chain.
pub fn decode_chain<T: Event + serde::de::DeserializeOwned>(
    name: &str,
    version: u32,
    payload: &str,
) -> Option<Result<T, DecodeErrorKind>> {
    // Versions first: a u32 comparison rejects most other links without reading the name.
    if version == T::VERSION && name == T::NAME {
        return Some(serde_json::from_str(payload).map_err(DecodeErrorKind::Payload));
    }
    T::Previous::decode_upcast::<T>(name, version, payload)
}

/// The (name, version) of `T` and of every predecessor in its chain, newest first.
pub fn chain_of<T: Event>() -> Vec<(&'static str, u32)> {
    let mut out = vec![(T::NAME, T::VERSION)];
    T::Previous::chain(&mut out);
    out
}

/// The closed set of events one aggregate applies: generated by `#[aggregate]` as an enum
/// with one variant per event type.
///
/// It knows how to turn each variant into a stored (name, version, payload) and back.
pub trait EventSet: fmt::Debug + Send + Sync + Sized + 'static {
    /// The stored name of this event.
    fn event_name(&self) -> &'static str;
    /// The schema version of this event.
    fn event_version(&self) -> u32;
    /// Serialises the payload to JSON.
    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error>;
    /// Decodes a stored (name, version, payload) into the set.
    fn decode(name: &str, version: u32, payload: &str) -> Result<Self, DecodeErrorKind>;
}

/// Why a stored event could not be decoded, without its location (see [`DecodeError`]).
#[derive(Debug, thiserror::Error)]
pub enum DecodeErrorKind {
    /// No event type of this aggregate has this (name, version).
    #[error("no event type is known for this name and version")]
    UnknownEvent,
    /// The payload does not match the event type's shape.
    #[error("malformed payload: {0}")]
    Payload(#[source] serde_json::Error),
}

/// A stored event that could not be decoded, with where it was found.
///
/// The repository never skips such an event: loading the stream fails with this error.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decode event `{name}` v{version} at version {stream_version} of stream `{stream}` \
     (global position {position}): {kind}"
)]
pub struct DecodeError {
    /// The stream holding the event.
    pub stream: String,
    /// The event's version in its stream.
    pub stream_version: u64,
    /// The event's global position.
    pub position: u64,
    /// The stored event name.
    pub name: String,
    /// The stored schema version.
    pub version: u32,
    /// What went wrong.
    #[source]
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn stored(event: &crate::store::StoredEvent<'_>, kind: DecodeErrorKind) -> Self {
        Self {
            stream: event.stream_id.to_owned(),
            stream_version: event.stream_version,
            position: event.position,
            name: event.name.to_owned(),
            version: event.version,
            kind,
        }
    }
}

/// Metadata stored beside every event's payload.
///
/// Correlation and causation follow the usual convention: a message that starts a
/// conversation is its own correlation and causation; everything it causes shares its
/// correlation id and names it as causation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The conversation this event belongs to.
    pub correlation_id: Uuid,
    /// The message (command or event) that caused this event.
    pub causation_id: Uuid,
    /// Who caused it, when known (a user id, a service name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Application-defined headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata for a message that starts its own conversation.
    pub fn root(id: Uuid) -> Self {
        Self {
            correlation_id: id,
            causation_id: id,
            actor: None,
            headers: BTreeMap::new(),
        }
    }
}

/// An event ready to be appended: its identity, stored name and version, payload and metadata.
///
/// ```
/// use annals::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged { n: u32 }
///
/// let event = NewEvent::from_event(&Pinged { n: 1 })?;
/// assert_eq!(event.name, "Pinged");
/// assert_eq!(event.payload.get(), r#"{"n":1}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// A unique id (UUID v7); appending an id that is already stored is a no-op.
    pub event_id: Uuid,
    /// The stored event name.
    pub name: String,
    /// The stored schema version.
    pub version: u32,
    /// The JSON payload.
    pub payload: Box<RawValue>,
    /// Correlation, causation, actor and headers.
    pub metadata: Metadata,
}

impl NewEvent {
    /// A new event with a fresh UUID v7 id that starts its own conversation.
    pub fn new(name: impl Into<String>, version: u32, payload: Box<RawValue>) -> Self {
        let event_id = Uuid::now_v7();
        Self {
            event_id,
            name: name.into(),
            version,
            payload,
            metadata: Metadata::root(event_id),
        }
    }

    /// Serialises one typed event.
    pub fn from_event<E: Event + Serialize>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self::new(
            E::NAME,
            E::VERSION,
            serde_json::value::to_raw_value(event)?,
        ))
    }

    /// Serialises one event of an aggregate's event set.
    pub fn from_set<E: EventSet>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self::new(
            event.event_name(),
            event.event_version(),
            event.encode()?,
        ))
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Replaces the event id (for example with one derived from an idempotency key).
    #[must_use]
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// An event as stored: everything in [`NewEvent`] plus its place in history.
#[derive(Clone, Debug)]
pub struct RecordedEvent {
    /// The event's unique id.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its version in the stream: 1 for the first event, contiguous.
    pub stream_version: u64,
    /// Its global position: unique, increasing within a stream and within an append.
    pub position: u64,
    /// The id of the transaction that appended it. Global order is (transaction id,
    /// position): on PostgreSQL, positions are not handed out in commit order, transaction
    /// ids below the oldest running transaction are final. Stores that commit in position
    /// order use the position itself.
    pub transaction_id: u64,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The stored event name.
    pub name: String,
    /// The stored schema version.
    pub version: u32,
    /// The JSON payload.
    pub payload: Box<RawValue>,
    /// Correlation, causation, actor and headers.
    pub metadata: Metadata,
}

impl RecordedEvent {
    /// Where this event sits in the global order: pass it to `read_all` or `subscribe` to
    /// continue after it.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// Decodes the payload into an aggregate's event set.
    pub fn decode<E: EventSet>(&self) -> Result<E, DecodeError> {
        crate::store::StoredEvent::of(self).decode()
    }
}

/// A point in the global order of all events: (transaction id, position), compared in that
/// order. Save the checkpoint of the last event processed and resume after it.
///
/// ```
/// use annals::Checkpoint;
/// assert!(Checkpoint::START < Checkpoint { transaction_id: 1, position: 1 });
/// assert!(Checkpoint { transaction_id: 1, position: 9 } < Checkpoint { transaction_id: 2, position: 3 });
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Checkpoint {
    /// The appending transaction's id.
    pub transaction_id: u64,
    /// The event's global position.
    pub position: u64,
}

impl Checkpoint {
    /// Before every event.
    pub const START: Self = Self {
        transaction_id: 0,
        position: 0,
    };
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.transaction_id, self.position)
    }
}

/// A decoded event together with its stored record (the audit trail's unit).
#[derive(Clone, Debug)]
pub struct Envelope<E> {
    /// The decoded event.
    pub event: E,
    /// The record: ids, positions, time, metadata and the raw payload.
    pub record: RecordedEvent,
}
