//! Numbers between Rust and SQL: the log's counters are `u64`, the columns signed 64-bit.
//! A value to store that a column cannot hold is a typed error, a stored value that no
//! counter can have is a corrupt record; nothing is clamped or reinterpreted silently.

use crate::event::Checkpoint;
use crate::store::StoreError;

/// A bound of a range of versions or positions, or an "after" cursor, as the parameter it
/// is compared with. No stored value exceeds `i64::MAX`, so a larger bound selects exactly
/// the rows `i64::MAX` selects: saturating here changes no result.
pub(crate) fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A row limit as a parameter: as for [`bound`], a larger limit selects the same rows.
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A value to store in `stream`: an error naming it when the column cannot hold it.
pub(crate) fn storable(stream: &str, field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        stream: stream.to_owned(),
        field,
        value,
        max: i64::MAX.unsigned_abs(),
    })
}

/// A stored counter read back from the row at `position` of `stream`: a negative one is
/// a corrupt record.
pub(crate) fn stored(
    stream: &str,
    position: i64,
    field: &str,
    value: i64,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        stream: stream.to_owned(),
        position: u64::try_from(position).unwrap_or(0),
        stream_version: None,
        checkpoint: None,
        reason: format!("negative {field} {value}"),
    })
}

/// A snapshot fingerprint as the signed column holds it: the same 64 bits. A fingerprint
/// is a hash, not a quantity, so every bit pattern is valid and the round trip through
/// [`from_fingerprint`] is exact.
pub(crate) fn to_fingerprint(fingerprint: u64) -> i64 {
    i64::from_be_bytes(fingerprint.to_be_bytes())
}

/// The fingerprint a signed column holds; see [`to_fingerprint`].
pub(crate) fn from_fingerprint(column: i64) -> u64 {
    u64::from_be_bytes(column.to_be_bytes())
}

/// A checkpoint as two parameters. Checkpoints come from the store's own columns, so they
/// fit; `bound` would only saturate one that did not, selecting the same rows.
pub(crate) fn checkpoint_params(checkpoint: Checkpoint) -> (i64, i64) {
    (bound(checkpoint.transaction_id), bound(checkpoint.position))
}

/// A projection's stored checkpoint: negative values are a corrupt row, named.
pub(crate) fn stored_checkpoint(
    projection: &str,
    transaction_id: i64,
    position: i64,
) -> Result<Checkpoint, StoreError> {
    match (u64::try_from(transaction_id), u64::try_from(position)) {
        (Ok(transaction_id), Ok(position)) => Ok(Checkpoint {
            transaction_id,
            position,
        }),
        _ => Err(StoreError::backend(CorruptCheckpoint {
            projection: projection.to_owned(),
            transaction_id,
            position,
        })),
    }
}

/// A projection's checkpoint from the two columns of `row` starting at `first`
/// (transaction id, then position).
pub(crate) fn checkpoint_at<R: sqlx::Row>(
    projection: &str,
    row: &R,
    first: usize,
) -> Result<Checkpoint, StoreError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let column = |index: usize| row.try_get::<i64, _>(index).map_err(StoreError::backend);
    stored_checkpoint(projection, column(first)?, column(first + 1)?)
}

/// A projection row whose checkpoint no event can have.
#[derive(Debug, thiserror::Error)]
#[error("projection `{projection}` has a corrupt checkpoint {transaction_id}/{position}")]
pub(crate) struct CorruptCheckpoint {
    projection: String,
    transaction_id: i64,
    position: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_saturate_values_do_not() {
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(bound(7), 7);
        assert_eq!(storable("s", "stream version", 7).ok(), Some(7));
        let error = storable("s", "stream version", u64::MAX).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::OutOfRange {
                    value: u64::MAX,
                    ..
                }
            ),
            "{error}"
        );
        assert!(matches!(
            stored("s", 3, "position", -1),
            Err(StoreError::Corrupt { position: 3, .. })
        ));
    }

    #[test]
    fn fingerprints_round_trip_every_bit() {
        for fingerprint in [0, 1, u64::MAX, 1 << 63, 0xcbf2_9ce4_8422_2325] {
            assert_eq!(from_fingerprint(to_fingerprint(fingerprint)), fingerprint);
        }
    }
}
