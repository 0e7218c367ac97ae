//! Subscriptions: stored events first, then live ones, each once and in global order.

use annals::Checkpoint;
use annals::prelude::*;

use super::helpers::{all_events, append_ok, numbered};

/// A subscription delivers stored events, then live ones, each once, in global order, and
/// resumes after any checkpoint.
pub async fn subscriptions_catch_up_then_go_live<S: EventStore>(store: S) {
    for n in 0..5 {
        append_ok(
            &store,
            &format!("sub-{}", n % 2),
            ExpectedVersion::Any,
            vec![numbered(n)],
        )
        .await;
    }
    let mut feed = store.subscribe(Checkpoint::START);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 5..40 {
                append_ok(
                    &store,
                    &format!("sub-{}", n % 3),
                    ExpectedVersion::Any,
                    vec![numbered(n), numbered(n + 100)],
                )
                .await;
            }
        })
    };
    let mut received = Vec::new();
    while received.len() < 75 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(30), feed.next()).await;
        received.push(
            next.expect("live event within 30 s")
                .expect("subscription open")
                .expect("read"),
        );
    }
    writer.await.expect("writer");
    // Nothing more arrives once caught up.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), feed.next())
            .await
            .is_err()
    );
    let stored = all_events(&store).await;
    let ids = |events: &[RecordedEvent]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
    assert_eq!(
        ids(&received),
        ids(&stored),
        "every event once, in global order"
    );

    let mut resumed = store.subscribe(stored[9].checkpoint());
    let first = resumed.next().await.expect("open").expect("read");
    assert_eq!(first.event_id, stored[10].event_id);
}
