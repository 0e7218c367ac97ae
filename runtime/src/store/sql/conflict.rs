//! The slow path of an append that did not go in: a retried append whose events are all
//! stored already returns the original result; anything else is the conflict it was.

use uuid::Uuid;

use super::convert::stored;
use crate::event::{Checkpoint, NewEvent};
use crate::store::{AppendResult, StoreError, replayed_append};

/// Settles an append to `stream` that failed with `conflict`, given the rows (event id,
/// stream, stream version, position, transaction id) where any of its events' ids are already stored.
pub(crate) fn settle_conflict(
    stream: &str,
    events: &[NewEvent],
    rows: &[(Uuid, String, i64, i64, i64)],
    conflict: StoreError,
) -> Result<AppendResult, StoreError> {
    let stored_at = events
        .iter()
        .map(|event| {
            rows.iter()
                .find(|row| row.0 == event.event_id)
                .map(|(_, s, version, position, transaction)| {
                    Ok((
                        s.clone(),
                        stored(s, *position, "stream version", *version)?,
                        Checkpoint {
                            transaction_id: stored(s, *position, "transaction id", *transaction)?,
                            position: stored(s, *position, "position", *position)?,
                        },
                    ))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    match replayed_append(stream, &stored_at, events)? {
        Some(original) => Ok(original),
        None => Err(conflict),
    }
}
