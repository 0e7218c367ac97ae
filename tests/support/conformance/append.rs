//! Appends: what they store, expected versions, and batches that land whole or not at all.

use std::collections::BTreeMap;

use annals::prelude::*;
use annals::{Metadata, StoreError};
use chrono::Utc;
use uuid::Uuid;

use super::helpers::{all_events, append_ok, assert_wrong_version, json, numbered};

/// Everything appended comes back: ids, versions, positions, names, payloads, metadata, time.
pub async fn append_and_read_round_trip_with_metadata<S: EventStore>(store: S) {
    let before = Utc::now();
    let correlation = Uuid::now_v7();
    let mut headers = BTreeMap::new();
    headers.insert("tenant".to_owned(), "acme – ünïcødé ✓".to_owned());
    let metadata = Metadata {
        correlation_id: correlation,
        causation_id: Uuid::now_v7(),
        actor: Some("alice".into()),
        headers,
    };
    let events: Vec<NewEvent> = (1..=3)
        .map(|n| numbered(n).with_metadata(metadata.clone()))
        .collect();
    let done = append_ok(
        &store,
        "orders-1",
        ExpectedVersion::NoStream,
        events.clone(),
    )
    .await;
    assert_eq!(done.stream_version, 3);
    assert!(!done.already_stored);
    assert_eq!(done.last_position - done.first_position, 2);

    let read = store.read_stream("orders-1", ..).await.expect("read");
    assert_eq!(read.len(), 3);
    for (i, (sent, got)) in events.iter().zip(&read).enumerate() {
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.stream_id, "orders-1");
        assert_eq!(got.stream_version, i as u64 + 1);
        assert_eq!(got.position, done.first_position + i as u64);
        assert_eq!(got.name, "Numbered");
        assert_eq!(got.version, 1);
        assert_eq!(json(&got.payload), json(&sent.payload));
        assert_eq!(got.metadata, metadata);
        let slack = chrono::Duration::seconds(1);
        assert!(
            got.recorded_at >= before - slack && got.recorded_at <= Utc::now() + slack,
            "{}",
            got.recorded_at
        );
    }
    assert_eq!(store.stream_version("orders-1").await.expect("version"), 3);
}

/// Exact, no-stream and any: a mismatch is a typed error with the actual version, and writes nothing.
pub async fn expected_version_rules<S: EventStore>(store: S) {
    let s = "rules-1";
    append_ok(&store, s, ExpectedVersion::NoStream, vec![numbered(1)]).await;
    assert_wrong_version(
        store
            .append(s, ExpectedVersion::NoStream, vec![numbered(2)])
            .await,
        s,
        ExpectedVersion::NoStream,
        1,
    );
    assert_wrong_version(
        store
            .append(s, ExpectedVersion::Exact(0), vec![numbered(2)])
            .await,
        s,
        ExpectedVersion::Exact(0),
        1,
    );
    assert_eq!(
        append_ok(&store, s, ExpectedVersion::Exact(1), vec![numbered(2)])
            .await
            .stream_version,
        2
    );
    assert_wrong_version(
        store
            .append(s, ExpectedVersion::Exact(1), vec![numbered(3)])
            .await,
        s,
        ExpectedVersion::Exact(1),
        2,
    );
    assert_wrong_version(
        store
            .append(s, ExpectedVersion::Exact(5), vec![numbered(3)])
            .await,
        s,
        ExpectedVersion::Exact(5),
        2,
    );
    assert_eq!(
        append_ok(
            &store,
            s,
            ExpectedVersion::Any,
            vec![numbered(3), numbered(4)]
        )
        .await
        .stream_version,
        4
    );
    assert_eq!(
        append_ok(
            &store,
            "rules-2",
            ExpectedVersion::Exact(0),
            vec![numbered(1)]
        )
        .await
        .stream_version,
        1
    );
    assert_eq!(
        append_ok(&store, "rules-3", ExpectedVersion::Any, vec![numbered(1)])
            .await
            .stream_version,
        1
    );
    assert_wrong_version(
        store
            .append("rules-4", ExpectedVersion::Exact(1), vec![numbered(1)])
            .await,
        "rules-4",
        ExpectedVersion::Exact(1),
        0,
    );

    let versions: Vec<u64> = store
        .read_stream(s, ..)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4], "failed appends must write nothing");
    assert_eq!(store.stream_version("rules-4").await.expect("version"), 0);
}

/// A batch that fails on its last event leaves no trace of the others.
pub async fn failed_batch_writes_nothing<S: EventStore>(store: S) {
    let taken = numbered(0);
    append_ok(
        &store,
        "batch-a",
        ExpectedVersion::NoStream,
        vec![taken.clone()],
    )
    .await;
    let batch = vec![
        numbered(1),
        numbered(2),
        numbered(3).with_event_id(taken.event_id),
    ];
    match store.append("batch-b", ExpectedVersion::Any, batch).await {
        Err(StoreError::DuplicateEventId {
            event_id,
            stream,
            existing_stream,
            existing_version,
        }) => {
            assert_eq!(event_id, taken.event_id);
            assert_eq!(
                (stream.as_str(), existing_stream.as_str(), existing_version),
                ("batch-b", "batch-a", 1)
            );
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    let twice = numbered(4);
    match store
        .append(
            "batch-b",
            ExpectedVersion::Any,
            vec![twice.clone(), numbered(5), twice.clone()],
        )
        .await
    {
        Err(StoreError::DuplicateEventIdInBatch { event_id, .. }) => {
            assert_eq!(event_id, twice.event_id)
        }
        other => panic!("expected DuplicateEventIdInBatch, got {other:?}"),
    }
    assert!(
        store
            .read_stream("batch-b", ..)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(store.stream_version("batch-b").await.expect("version"), 0);
    assert_eq!(all_events(&store).await.len(), 1);
    // The stream is still usable from version 0.
    assert_eq!(
        append_ok(
            &store,
            "batch-b",
            ExpectedVersion::NoStream,
            vec![numbered(6)]
        )
        .await
        .stream_version,
        1
    );
}

/// A retried append (same event ids) is a no-op reporting the original positions.
pub async fn appending_stored_event_ids_is_idempotent<S: EventStore>(store: S) {
    let batch = vec![numbered(1), numbered(2)];
    let first = append_ok(&store, "idem-1", ExpectedVersion::NoStream, batch.clone()).await;
    append_ok(
        &store,
        "idem-other",
        ExpectedVersion::NoStream,
        vec![numbered(9)],
    )
    .await;
    // The retry carries the expected version of the original request, now stale.
    let retry = append_ok(&store, "idem-1", ExpectedVersion::NoStream, batch.clone()).await;
    assert!(retry.already_stored);
    assert_eq!(
        (
            retry.stream_version,
            retry.first_position,
            retry.last_position
        ),
        (
            first.stream_version,
            first.first_position,
            first.last_position
        )
    );
    assert_eq!(
        store.read_stream("idem-1", ..).await.expect("read").len(),
        2
    );
    assert_eq!(all_events(&store).await.len(), 3);

    // The same ids in another stream, or a batch only partly stored, are conflicts.
    assert!(matches!(
        store
            .append("idem-2", ExpectedVersion::Any, batch.clone())
            .await,
        Err(StoreError::DuplicateEventId { .. })
    ));
    assert!(matches!(
        store
            .append(
                "idem-1",
                ExpectedVersion::Any,
                vec![batch[0].clone(), numbered(3)]
            )
            .await,
        Err(StoreError::DuplicateEventId { .. })
    ));
    assert_eq!(all_events(&store).await.len(), 3);
}

/// Concurrent appends to many streams (which group commit writes together) are each
/// settled on their own. A stale expected version fails alone with the stream's real version, a
/// retried append is recognised as already stored, and every other append lands once.
/// Returns every event stored, for backend checks of how they were committed.
pub async fn concurrent_appends_settle_each_on_its_own<S: EventStore>(
    store: S,
) -> Vec<RecordedEvent> {
    store
        .append(
            "g-old",
            ExpectedVersion::NoStream,
            vec![numbered(1), numbered(2)],
        )
        .await
        .expect("seed");
    let retried = vec![numbered(7)];
    let original = store
        .append("g-retry", ExpectedVersion::NoStream, retried.clone())
        .await
        .expect("original");
    for round in 0..10u64 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32u64 {
            let store = store.clone();
            tasks.spawn(async move {
                let stream = format!("g-{round}-{i}");
                let done = store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        vec![numbered(i), numbered(i + 1)],
                    )
                    .await
                    .expect("append");
                assert_eq!(done.stream_version, 2);
                assert!(done.last_position > done.first_position, "{stream}");
            });
        }
        let stale = store.clone();
        tasks.spawn(async move {
            match stale
                .append("g-old", ExpectedVersion::Exact(1), vec![numbered(3)])
                .await
            {
                Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                    assert_eq!(actual, 2)
                }
                other => panic!("a stale expected version must fail alone: {other:?}"),
            }
        });
        let (again, retried) = (store.clone(), retried.clone());
        tasks.spawn(async move {
            let done = again
                .append("g-retry", ExpectedVersion::NoStream, retried)
                .await
                .expect("retry");
            assert!(done.already_stored);
            assert_eq!(done.first_position, original.first_position);
        });
        while let Some(task) = tasks.join_next().await {
            task.expect("task");
        }
    }
    // Past the read horizon, which other tests' open transactions can hold back.
    let events = all_events(&store).await;
    assert_eq!(events.len(), 10 * 32 * 2 + 2 + 1, "each append stored once");
    for round in 0..10u64 {
        for i in 0..32u64 {
            let stream = format!("g-{round}-{i}");
            let versions: Vec<u64> = events
                .iter()
                .filter(|e| e.stream_id == stream)
                .map(|e| e.stream_version)
                .collect();
            assert_eq!(versions, [1, 2], "{stream}");
        }
    }
    events
}

/// Batches larger than one statement can carry are still one atomic append.
pub async fn large_batches_are_atomic<S: EventStore>(store: S) {
    let batch: Vec<NewEvent> = (1..=2500).map(numbered).collect();
    let done = append_ok(&store, "large-1", ExpectedVersion::NoStream, batch.clone()).await;
    assert_eq!(
        (
            done.stream_version,
            done.last_position - done.first_position
        ),
        (2500, 2499)
    );
    let versions: Vec<u64> = store
        .read_stream("large-1", ..)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=2500).collect::<Vec<_>>());

    assert_wrong_version(
        store
            .append(
                "large-1",
                ExpectedVersion::Exact(1),
                (1..=2500).map(numbered).collect(),
            )
            .await,
        "large-1",
        ExpectedVersion::Exact(1),
        2500,
    );
    // The last event of a 2,500-event batch collides: the chunks before it must not stay.
    let mut colliding: Vec<NewEvent> = (1..=2500).map(numbered).collect();
    colliding[2499] = numbered(0).with_event_id(batch[0].event_id);
    assert!(matches!(
        store
            .append("large-2", ExpectedVersion::NoStream, colliding)
            .await,
        Err(StoreError::DuplicateEventId { .. })
    ));
    assert_eq!(store.stream_version("large-2").await.expect("version"), 0);
    assert_eq!(all_events(&store).await.len(), 2500);
}
