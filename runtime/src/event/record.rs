//! The records a store keeps: events to append, events as stored, and where they sit.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{DecodeError, Event, EventSet};

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
    /// A new event with a fresh UUID v7 id that starts its own conversation. The name must
    /// be a valid event name (see [`validate_event_name`]).
    ///
    /// ```
    /// use annals::NewEvent;
    ///
    /// let payload = || serde_json::value::to_raw_value(&1).unwrap();
    /// assert!(NewEvent::new("OrderPlaced", 1, payload()).is_ok());
    /// assert!(NewEvent::new("OrderPlaced ", 1, payload()).is_err()); // a trailing space
    /// ```
    pub fn new(
        name: impl Into<String>,
        version: u32,
        payload: Box<RawValue>,
    ) -> Result<Self, InvalidEventName> {
        let name = name.into();
        validate_event_name(&name)?;
        Ok(Self::unchecked(name, version, payload))
    }

    /// A new event whose name is known to be valid: an `Event`'s, which its derive checked.
    fn unchecked(name: impl Into<String>, version: u32, payload: Box<RawValue>) -> Self {
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
        Ok(Self::unchecked(
            E::NAME,
            E::VERSION,
            serde_json::value::to_raw_value(event)?,
        ))
    }

    /// Serialises one event of an aggregate's event set.
    pub fn from_set<E: EventSet>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self::unchecked(
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

/// The longest event name accepted, in bytes.
pub const MAX_EVENT_NAME_LEN: usize = 255;

/// The highest event version every store holds (PostgreSQL keeps versions as `int4`).
pub const MAX_EVENT_VERSION: u32 = 2_147_483_647;

/// A name that cannot be an event's stored name; see [`validate_event_name`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid event name {name:?}: {reason}")]
pub struct InvalidEventName {
    /// The rejected name.
    pub name: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// Checks an event name: 1 to [`MAX_EVENT_NAME_LEN`] bytes of letters, digits and `_`,
/// `.`, `-`, `:`, `/`, starting with a letter or `_`. No spaces and no control characters:
/// a name is stored with every event and selects the type that decodes it, so a stray
/// character (a trailing space) would store history under a name nothing reads.
/// `#[derive(Event)]` checks the same rules at compile time.
///
/// ```
/// use annals::validate_event_name;
///
/// assert!(validate_event_name("account.deposited").is_ok());
/// assert!(validate_event_name("OrderPlaced ").is_err());
/// ```
pub fn validate_event_name(name: &str) -> Result<(), InvalidEventName> {
    let mut chars = name.chars();
    let reason = match chars.next() {
        None => "an event name must not be empty",
        Some(_) if name.len() > MAX_EVENT_NAME_LEN => "an event name must be at most 255 bytes",
        Some(first) if !(first.is_alphabetic() || first == '_') => {
            "an event name starts with a letter or `_`"
        }
        Some(_) if !chars.all(|c| c.is_alphanumeric() || "_.-:/".contains(c)) => {
            "an event name holds letters, digits and `_`, `.`, `-`, `:`, `/` only: no spaces or \
             control characters"
        }
        Some(_) => return Ok(()),
    };
    Err(InvalidEventName {
        name: name.to_owned(),
        reason,
    })
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
        StoredEvent::of(self).decode()
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

/// One stored event as an aggregate's load sees it, borrowed from the row that holds it:
/// what decoding needs and where the event is, without its metadata.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StoredEvent<'a> {
    /// The stream it belongs to.
    pub stream_id: &'a str,
    /// Its version in its stream.
    pub stream_version: u64,
    /// Its global position.
    pub position: u64,
    /// The stored event name.
    pub name: &'a str,
    /// The stored schema version.
    pub version: u32,
    /// The JSON payload, as stored.
    pub payload: &'a str,
    /// The full record, when this view was made of one: upcasters that read the record
    /// need it.
    record: Option<&'a RecordedEvent>,
}

impl<'a> StoredEvent<'a> {
    /// Decodes the payload into an aggregate's event set, upcasting old versions.
    ///
    /// ```
    /// use annals::prelude::*;
    /// use annals::{Checkpoint, MemoryStore};
    ///
    /// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    /// struct Pinged {
    ///     n: u32,
    /// }
    ///
    /// #[derive(Default)]
    /// struct Pinger;
    ///
    /// #[aggregate(category = "pinger")]
    /// impl Pinger {
    ///     #[apply]
    ///     fn pinged(&mut self, _: &Pinged) {}
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged { n: 7 })?]).await?;
    /// let mut seen = Vec::new();
    /// store
    ///     .catch_up(Checkpoint::START, |_, e| {
    ///         let PingerEvent::Pinged(p) = e.decode::<PingerEvent>()?;
    ///         seen.push(p.n);
    ///         Ok::<_, annals::RepositoryError>(())
    ///     })
    ///     .await?;
    /// assert_eq!(seen, [7]);
    /// # Ok(()) }
    /// ```
    pub fn decode<E: EventSet>(&self) -> Result<E, DecodeError> {
        E::decode_with(self.name, self.version, self.payload, self.record)
            .map_err(|kind| DecodeError::stored(self, kind))
    }

    /// A lean view of a row: what decoding needs and where the event is.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn lean(
        stream_id: &'a str,
        stream_version: u64,
        position: u64,
        name: &'a str,
        version: u32,
        payload: &'a str,
    ) -> Self {
        Self {
            stream_id,
            stream_version,
            position,
            name,
            version,
            payload,
            record: None,
        }
    }

    /// The full record behind this view, when it was made of one.
    pub(crate) fn record(&self) -> Option<&'a RecordedEvent> {
        self.record
    }

    /// The lean view of a full record.
    pub fn of(record: &'a RecordedEvent) -> Self {
        Self {
            stream_id: &record.stream_id,
            stream_version: record.stream_version,
            position: record.position,
            name: &record.name,
            version: record.version,
            payload: record.payload.get(),
            record: Some(record),
        }
    }
}
