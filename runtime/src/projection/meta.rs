//! What a handler may learn of the event besides its payload.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{Checkpoint, Metadata, RecordedEvent};

/// Where an event is and who caused it: a handler's optional second argument.
///
/// ```
/// use annals::prelude::*;
/// use annals::projection::EventMeta;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged;
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct LastPing { at: Option<annals::chrono::DateTime<annals::chrono::Utc>>, by: Option<String> }
///
/// #[projection]
/// impl LastPing {
///     #[handle]
///     fn pinged(&mut self, _: &Pinged, meta: &EventMeta) {
///         self.at = Some(meta.recorded_at);
///         self.by = meta.metadata.actor.clone();
///     }
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EventMeta {
    /// The event's id.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its version in its stream.
    pub stream_version: u64,
    /// Its global position.
    pub position: u64,
    /// Where it is in the global order.
    pub checkpoint: Checkpoint,
    /// When it was stored.
    pub recorded_at: DateTime<Utc>,
    /// Correlation and causation ids, actor, headers.
    pub metadata: Metadata,
}

impl EventMeta {
    pub(crate) fn of(record: &RecordedEvent) -> Self {
        Self {
            event_id: record.event_id,
            stream_id: record.stream_id.clone(),
            stream_version: record.stream_version,
            position: record.position,
            checkpoint: record.checkpoint(),
            recorded_at: record.recorded_at,
            metadata: record.metadata.clone(),
        }
    }
}
