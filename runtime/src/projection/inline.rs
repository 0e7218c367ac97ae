//! Inline projections: applied to appended events inside the append's own transaction,
//! so a read model is never behind the log and a failing handler writes nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use super::describe::{Described, Erased};
use super::{Change, Changes, DocumentProjection, ProjectionError, Slot};
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::StoreError;

/// The projections a store applies inline, each with the slot its documents live in.
#[derive(Clone, Debug, Default)]
pub(crate) struct InlineSet {
    projections: Arc<Vec<(Described, Slot)>>,
}

impl InlineSet {
    /// This set and `P`, whose documents go to `slot`.
    pub(crate) fn with<P: DocumentProjection>(&self, slot: Slot) -> Self {
        let mut all: Vec<_> = self
            .projections
            .iter()
            .filter(|(d, _)| (d.name, d.version) != (P::NAME, P::VERSION))
            .cloned()
            .collect();
        all.push((Described::of::<P>(), slot));
        Self {
            projections: Arc::new(all),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.projections.is_empty()
    }

    /// The (name, version) of each.
    pub(crate) fn names(&self) -> Vec<(&'static str, u32)> {
        self.projections
            .iter()
            .map(|(d, _)| (d.name, d.version))
            .collect()
    }
}

/// A backend's open transaction, as the inline projections need it.
pub(crate) trait InlineTx: Send {
    /// The slot's documents under `keys`.
    fn load(
        &mut self,
        slot: &Slot,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Stores `(key, Some(JSON))`, deletes `(key, None)`. `loaded` are the keys `load`
    /// found: the others are new. `false` when a new one was created meanwhile by another
    /// transaction: nothing may be committed then, and the append is tried again.
    fn write(
        &mut self,
        slot: &Slot,
        changes: Changes,
        loaded: &[String],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Applies `set` to `records`, the events just appended to `stream` (in order), inside
/// `tx`. An error means the caller must roll back; so does `false`, after which the
/// append is tried again (a document the append creates was created meanwhile).
pub(crate) async fn apply<T: InlineTx>(
    tx: &mut T,
    set: &InlineSet,
    stream: &str,
    records: &[RecordedEvent],
) -> Result<bool, StoreError> {
    let refused = |source: ProjectionError| StoreError::Inline {
        stream: stream.to_owned(),
        source: Box::new(source),
    };
    for (described, slot) in set.projections.iter() {
        let mut routed = Vec::new();
        for record in records {
            let event = StoredEvent::of(record);
            match (described.route)(&event) {
                None => {}
                Some(Ok((key, decoded))) => routed.push((key, decoded, record)),
                Some(Err(source)) => {
                    return Err(refused(ProjectionError::Decode {
                        projection: described.name.to_owned(),
                        source,
                    }));
                }
            }
        }
        if routed.is_empty() {
            continue;
        }
        let mut keys: Vec<String> = routed.iter().map(|(key, ..)| key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut documents: HashMap<String, (Erased, Change)> = HashMap::new();
        let stored = tx.load(slot, &keys).await?;
        let loaded: Vec<String> = stored.iter().map(|(key, _)| key.clone()).collect();
        for (key, body) in stored {
            let document = (described.read_document)(&body).map_err(|source| {
                refused(ProjectionError::Document {
                    projection: described.name.to_owned(),
                    key: key.clone(),
                    source,
                })
            })?;
            documents.insert(key, (document, Change::Keep));
        }
        for (key, decoded, record) in routed {
            let (document, change) = documents
                .entry(key)
                .or_insert_with(|| ((described.new_document)(), Change::Keep));
            if *change == Change::Delete {
                *document = (described.new_document)();
            }
            *change = (described.apply)(document, decoded).map_err(|source| {
                refused(ProjectionError::Handler {
                    projection: described.name.to_owned(),
                    stream: record.stream_id.clone(),
                    stream_version: record.stream_version,
                    position: record.position,
                    event: record.name.clone(),
                    source,
                })
            })?;
        }
        let mut changes = Vec::with_capacity(documents.len());
        for (key, (document, change)) in documents {
            let body = match change {
                Change::Delete => None,
                Change::Keep => {
                    let written = (described.write_document)(&document).unwrap_or_else(|| {
                        Err(serde::ser::Error::custom(
                            "the document is not of the projection's type",
                        ))
                    });
                    Some(written.map_err(|source| {
                        refused(ProjectionError::Document {
                            projection: described.name.to_owned(),
                            key: key.clone(),
                            source,
                        })
                    })?)
                }
            };
            changes.push((key, body));
        }
        if !tx.write(slot, changes, &loaded).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The records of events just appended to `stream`, from what the append knows, as a
/// reader of the log will get them: `positions` holds one per event, in order.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn records(
    stream: &str,
    first_version: u64,
    positions: &[Checkpoint],
    events: &[crate::event::NewEvent],
    recorded_at: chrono::DateTime<chrono::Utc>,
) -> Vec<RecordedEvent> {
    events
        .iter()
        .zip(positions)
        .enumerate()
        .map(|(i, (event, at))| RecordedEvent {
            event_id: event.event_id,
            stream_id: stream.to_owned(),
            stream_version: first_version + i as u64,
            position: at.position,
            transaction_id: at.transaction_id,
            recorded_at,
            name: event.name.clone(),
            version: event.version,
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
        })
        .collect()
}
