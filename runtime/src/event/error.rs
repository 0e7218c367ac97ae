//! Why a stored event could not be decoded, and where it was.

use super::StoredEvent;

/// Why a stored event could not be decoded, without its location (see [`DecodeError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// No event type of this aggregate has this (name, version).
    #[error("no event type is known for this name and version")]
    UnknownEvent,
    /// The payload does not match the event type's shape.
    #[error("malformed payload: {0}")]
    Payload(#[source] serde_json::Error),
    /// The event decodes through an upcaster that reads the stored record, and the read
    /// that found it carries no record (a lean read such as `fold_all` or `catch_up`).
    #[error(
        "decoding it upcasts to `{upcast_to}`, whose upcaster reads the stored record: read \
         full records (`read_stream`, `read_all`, `subscribe`) to decode it"
    )]
    RecordNeeded {
        /// The type whose upcaster reads the record.
        upcast_to: &'static str,
    },
    /// A projection handler takes the event's metadata, and the read that found the event
    /// carries none (a lean read).
    #[error("a handler takes the event's metadata: read full records to apply it")]
    MetadataNeeded,
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
    pub(crate) fn stored(event: &StoredEvent<'_>, kind: DecodeErrorKind) -> Self {
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
