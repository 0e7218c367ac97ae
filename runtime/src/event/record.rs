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
