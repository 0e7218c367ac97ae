//! Inline projections: applied inside the append's transaction, from the records it stored.

use annals::prelude::*;
use annals::projection::{Documents, ProjectionStore};

use super::helpers::open;
use crate::domain::Deposited;
use crate::views::Trail;

/// An inline handler sees each event as readers of the log will: the same id, stream
/// version, position, transaction id, recording time and metadata, for every event of an
/// append of several.
pub async fn inline_handlers_see_what_readers_see<S: ProjectionStore>(store: S) {
    let store = store.inline::<Trail>().await.expect("inline");
    open(&store, "trail", "ann").await;
    let events: Vec<NewEvent> = (1..=3)
        .map(|amount| NewEvent::from_event(&Deposited { amount }).expect("an event"))
        .collect();
    store
        .append("account-trail", ExpectedVersion::Exact(1), events)
        .await
        .expect("append");
    let trail = Documents::<Trail, _>::new(store.clone())
        .get("account-trail")
        .await
        .expect("get")
        .expect("a document");
    let stored = store
        .read_stream("account-trail", 1..=4)
        .await
        .expect("read");
    let read: Vec<_> = stored
        .iter()
        .map(|r| {
            (
                r.event_id.to_string(),
                r.stream_version,
                r.position,
                r.transaction_id,
                r.recorded_at.timestamp_micros(),
                r.metadata.correlation_id.to_string(),
            )
        })
        .collect();
    assert_eq!(read.len(), 4);
    assert_eq!(trail.seen, read);
}
