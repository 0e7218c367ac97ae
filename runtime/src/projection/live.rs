//! Live projections: folded over the log when asked, stored nowhere.

use super::describe::Described;
use super::{Change, DocumentKey, DocumentProjection, ProjectionError, ProjectionStore};
use crate::event::{Checkpoint, StoredEvent};
use crate::store::{EventStore, StoreError};

/// Folds projection `P` over the whole log for one key: for rare or ad-hoc questions that
/// do not deserve a stored read model. Reads every event, so it costs a full catch-up.
///
/// ```
/// use annals::prelude::*;
/// use annals::projection::project_live;
/// use annals::MemoryStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged;
///
/// #[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
/// struct Pings { count: u32 }
///
/// #[projection]
/// impl Pings {
///     #[handle]
///     fn pinged(&mut self, _: &Pinged) { self.count += 1 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// store.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged)?]).await?;
/// assert_eq!(project_live::<Pings, _>(&store, "pinger-1").await?, Some(Pings { count: 1 }));
/// assert_eq!(project_live::<Pings, _>(&store, "pinger-9").await?, None);
/// # Ok(()) }
/// ```
pub async fn project_live<P: DocumentProjection, S: ProjectionStore>(
    store: &S,
    key: impl DocumentKey,
) -> Result<Option<P>, ProjectionError> {
    let key = key.to_key();
    let described = Described::of::<P>();
    let mut document: Option<P> = None;
    let mut fold = |event: &StoredEvent<'_>| -> Result<(), Live> {
        let Some(routed) = P::route(event) else {
            return Ok(());
        };
        let routed = routed.map_err(|source| {
            Live::Failed(Box::new(ProjectionError::Decode {
                projection: P::NAME.to_owned(),
                source,
            }))
        })?;
        if routed.key != key {
            return Ok(());
        }
        let mut erased: super::describe::Erased = Box::new(document.take().unwrap_or_default());
        let change = (described.apply)(&mut erased, Box::new(routed.event)).map_err(|source| {
            Live::Failed(Box::new(ProjectionError::Handler {
                projection: P::NAME.to_owned(),
                stream: event.stream_id.to_owned(),
                stream_version: event.stream_version,
                position: event.position,
                event: event.name.to_owned(),
                source,
            }))
        })?;
        document = match change {
            Change::Delete => None,
            Change::Keep => erased.downcast::<P>().ok().map(|kept| *kept),
        };
        Ok(())
    };
    let folded = if P::reads_records() {
        read_records(store, |event| fold(&event)).await
    } else {
        store
            .catch_up(Checkpoint::START, |_, event| fold(&event))
            .await
            .map(drop)
    };
    match folded {
        Ok(()) => Ok(document),
        Err(Live::Store(error)) => Err(ProjectionError::store(P::NAME, error)),
        Err(Live::Failed(error)) => Err(*error),
    }
}

/// Every record of the log, in pages, for projections that read metadata.
async fn read_records<S: EventStore>(
    store: &S,
    mut f: impl FnMut(StoredEvent<'_>) -> Result<(), Live>,
) -> Result<(), Live> {
    const PAGE: usize = 4096;
    let mut after = Checkpoint::START;
    loop {
        let records = store.read_all(after, PAGE).await?;
        for record in &records {
            f(StoredEvent::of(record))?;
            after = record.checkpoint();
        }
        if records.len() < PAGE {
            return Ok(());
        }
    }
}

enum Live {
    Store(StoreError),
    Failed(Box<ProjectionError>),
}

impl From<StoreError> for Live {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}
