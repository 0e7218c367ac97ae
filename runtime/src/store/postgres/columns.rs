//! An append's events as the statements' parameters: versions the column can hold,
//! metadata as JSON text.

use crate::event::NewEvent;
use crate::store::StoreError;

/// The events' versions as the `int4` column holds them: a larger one is an error, never
/// stored as another number.
pub(super) fn event_versions(stream: &str, events: &[NewEvent]) -> Result<Vec<i32>, StoreError> {
    events
        .iter()
        .map(|e| {
            i32::try_from(e.version).map_err(|_| StoreError::OutOfRange {
                stream: stream.to_owned(),
                field: "event version",
                value: u64::from(e.version),
                max: i32::MAX.unsigned_abs().into(),
            })
        })
        .collect()
}

/// The events' metadata as JSON text.
pub(super) fn encode_metadata(events: &[NewEvent]) -> Result<Vec<String>, StoreError> {
    events
        .iter()
        .map(|e| serde_json::to_string(&e.metadata))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::backend)
}
