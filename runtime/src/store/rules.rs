//! The rules every backend applies the same way: valid stream ids and batches, and how
//! an append whose event ids are already stored is told apart from a conflict.

use crate::event::{Checkpoint, MAX_EVENT_VERSION, NewEvent, validate_event_name};

use super::error::StoreError;
use super::version::AppendResult;

/// The longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 1024;

/// Checks a stream id: non-empty, at most [`MAX_STREAM_ID_LEN`] bytes, no NUL character
/// (which PostgreSQL text cannot hold). Any other character, quotes included, is fine:
/// ids are always bound as parameters, never spliced into SQL.
pub fn validate_stream_id(stream: &str) -> Result<(), StoreError> {
    let reason = if stream.is_empty() {
        "a stream id must not be empty"
    } else if stream.len() > MAX_STREAM_ID_LEN {
        "a stream id must be at most 1024 bytes"
    } else if stream.contains('\0') {
        "a stream id must not contain a NUL character"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidStreamId {
        stream: stream.to_owned(),
        reason,
    })
}

/// The checks every backend makes before writing: a valid stream id, at least one event,
/// valid event names, versions every store holds exactly, no event id twice in the batch.
pub(crate) fn validate_append(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    validate_stream_id(stream)?;
    if events.is_empty() {
        return Err(StoreError::EmptyAppend {
            stream: stream.to_owned(),
        });
    }
    for event in events {
        validate_event_name(&event.name).map_err(|e| StoreError::InvalidEventName {
            stream: stream.to_owned(),
            name: e.name,
            reason: e.reason,
        })?;
        if event.version > MAX_EVENT_VERSION {
            return Err(StoreError::OutOfRange {
                stream: stream.to_owned(),
                field: "event version",
                value: u64::from(event.version),
                max: u64::from(MAX_EVENT_VERSION),
            });
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    match events.iter().find(|e| !seen.insert(e.event_id)) {
        Some(e) => Err(StoreError::DuplicateEventIdInBatch {
            event_id: e.event_id,
            stream: stream.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Checks an idempotent retry: `stored[i]` is where `events[i]`'s id is already stored,
/// if it is. Returns the original result when the whole batch is stored, in this stream,
/// in this order; `None` when none of it is; an error for anything in between.
pub(crate) fn replayed_append(
    stream: &str,
    stored: &[Option<(String, u64, Checkpoint)>],
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    if stored.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut previous: Option<u64> = None;
    for (found, event) in stored.iter().zip(events) {
        match found {
            Some((s, v, _)) if s == stream && previous.is_none_or(|p| p + 1 == *v) => {
                previous = Some(*v)
            }
            // Report the first id that is stored, and where: that is what conflicts.
            _ => {
                let (event_id, (existing_stream, existing_version, _)) = stored
                    .iter()
                    .zip(events)
                    .find_map(|(f, e)| f.clone().map(|f| (e.event_id, f)))
                    .unwrap_or((event.event_id, Default::default()));
                return Err(StoreError::DuplicateEventId {
                    event_id,
                    stream: stream.to_owned(),
                    existing_stream,
                    existing_version,
                });
            }
        }
    }
    let first = stored
        .iter()
        .flatten()
        .map(|(_, _, c)| c.position)
        .min()
        .unwrap_or(0);
    // The last event in the global order: one transaction wrote them all.
    let last = stored
        .iter()
        .flatten()
        .map(|(_, _, c)| *c)
        .max()
        .unwrap_or(Checkpoint::START);
    Ok(Some(AppendResult {
        stream_version: previous.unwrap_or(0),
        first_position: first,
        last_position: last.position,
        transaction_id: last.transaction_id,
        already_stored: true,
    }))
}
