//! The behaviour every `EventStore` must have, written once and run against each backend
//! by [`conformance_suite!`](crate::conformance_suite).

use std::collections::BTreeMap;
use std::sync::Arc;

use annals::prelude::*;
use annals::{
    AppendResult, Checkpoint, DecodeErrorKind, Error, ExecuteError, Metadata, SnapshotRecord,
    StoreError, StoredEvent, VersionRange,
};
use chrono::Utc;
use serde_json::value::{RawValue, to_raw_value};
use uuid::Uuid;

use crate::domain::ledger::{Credit, Grant, v1, v2, v3};
use crate::domain::{Account, Deposit, Ledger, Open};

fn event(name: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(name, 1, to_raw_value(&payload).expect("json"))
}

fn numbered(n: u64) -> NewEvent {
    event("Numbered", serde_json::json!({ "n": n }))
}

async fn append_ok<S: EventStore>(
    store: &S,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendResult {
    store
        .append(stream, expected, events)
        .await
        .unwrap_or_else(|e| panic!("append to {stream}: {e}"))
}

const BARRIER: &str = "__barrier-";

/// Events of the test's own streams (barriers left out).
fn own(events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    events
        .into_iter()
        .filter(|e| !e.stream_id.starts_with(BARRIER))
        .collect()
}

/// Reads with `read` every 10 ms until `done` holds, failing after 30 s with `what`.
async fn settled<T, Fut>(what: &str, mut read: impl FnMut() -> Fut, done: impl Fn(&T) -> bool) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} after 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `schema::verify`'s report once it counts `events` events: like `read_all`, which it
/// reads through, it sees an event only past the store's read horizon (see [`all_events`];
/// a barrier would show up in the report, so this waits on the count instead).
async fn verify_settled<S: EventStore>(store: &S, events: u64) -> annals::schema::VerifyReport {
    settled(
        &format!("verify saw fewer than {events} events"),
        || async { annals::schema::verify(store).await.expect("verify") },
        |report| report.stored.values().map(|s| s.count).sum::<u64>() >= events,
    )
    .await
}

/// Every event the test appended, once all of them are past the store's read horizon.
///
/// `read_all` withholds events while an older transaction may still commit (on PostgreSQL,
/// any write transaction in the cluster). A barrier appended after the test's writes has a
/// newer transaction id than all of them: once it is visible, so is everything before it.
pub async fn all_events<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let barrier = numbered(0);
    let stream = format!("{BARRIER}{}", barrier.event_id);
    append_ok(
        store,
        &stream,
        ExpectedVersion::NoStream,
        vec![barrier.clone()],
    )
    .await;
    let events = settled(
        "barrier not visible",
        || async {
            store
                .read_all(Checkpoint::START, usize::MAX)
                .await
                .expect("read all")
        },
        |events| events.iter().any(|e| e.event_id == barrier.event_id),
    )
    .await;
    own(events)
}

fn json(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).expect("stored payload is JSON")
}

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

fn assert_wrong_version(
    result: Result<AppendResult, StoreError>,
    stream: &str,
    expected: ExpectedVersion,
    actual: u64,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!((s.as_str(), e, a), (stream, expected, actual));
        }
        other => panic!(
            "expected WrongExpectedVersion {{ {stream}, {expected}, {actual} }}, got {other:?}"
        ),
    }
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

/// Version ranges select exactly the asked events; a missing stream reads empty.
pub async fn read_stream_ranges<S: EventStore>(store: S) {
    append_ok(
        &store,
        "range-1",
        ExpectedVersion::NoStream,
        (1..=10).map(numbered).collect(),
    )
    .await;
    let versions =
        |events: Vec<RecordedEvent>| events.iter().map(|e| e.stream_version).collect::<Vec<_>>();
    assert_eq!(
        versions(store.read_stream("range-1", ..).await.expect("read")),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(store.read_stream("range-1", 3..=5).await.expect("read")),
        [3, 4, 5]
    );
    assert_eq!(
        versions(store.read_stream("range-1", 8..).await.expect("read")),
        [8, 9, 10]
    );
    assert_eq!(
        versions(store.read_stream("range-1", ..3).await.expect("read")),
        [1, 2]
    );
    assert_eq!(
        versions(store.read_stream("range-1", 0..=1).await.expect("read")),
        [1]
    );
    assert!(
        store
            .read_stream("range-1", 11..)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .read_stream("range-1", 6..6)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .read_stream("range-missing", ..)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(store.stream_version("range-1").await.expect("version"), 10);
    assert_eq!(
        store
            .stream_version("range-missing")
            .await
            .expect("version"),
        0
    );
}

/// `read_all` returns every stream's events in one increasing order, resumable page by page.
pub async fn read_all_in_global_order_with_limits<S: EventStore>(store: S) {
    for round in 0..4u64 {
        for stream in ["all-a", "all-b", "all-c"] {
            let expected = if round == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(round)
            };
            append_ok(&store, stream, expected, vec![numbered(round)]).await;
        }
    }
    let all = all_events(&store).await;
    assert_eq!(all.len(), 12);
    assert!(
        all.windows(2).all(|w| w[0].position < w[1].position),
        "positions must increase"
    );
    let order: Vec<&str> = all.iter().take(3).map(|e| e.stream_id.as_str()).collect();
    assert_eq!(
        order,
        ["all-a", "all-b", "all-c"],
        "global order is append order"
    );

    let mut paged = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let page = store.read_all(after, 5).await.expect("read page");
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = last.checkpoint();
        paged.extend(own(page));
    }
    let ids = |events: &[RecordedEvent]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
    assert_eq!(ids(&paged), ids(&all));
    assert!(
        store
            .read_all(Checkpoint::START, 0)
            .await
            .expect("read")
            .is_empty()
    );
    let after = |i: usize| store.read_all(all[i].checkpoint(), 100);
    assert_eq!(own(after(9).await.expect("read")).len(), 2);
    assert!(own(after(11).await.expect("read")).is_empty());
}

/// Quotes, SQL fragments and non-ASCII text in stream ids and payloads are stored verbatim.
pub async fn hostile_strings_round_trip<S: EventStore>(store: S) {
    let hostile = [
        "account-'; DROP TABLE annals_events; --",
        "ünïcødé-流-🚀",
        "quote\"s-and-back\\slashes",
        "percent%_and_underscore",
        "tab\tand\nnewline",
    ];
    for (i, s) in hostile.iter().enumerate() {
        let payload = serde_json::json!({ "text": s, "sql": "' OR 1=1 --", "i": i });
        append_ok(
            &store,
            s,
            ExpectedVersion::NoStream,
            vec![event("Hostile", payload.clone())],
        )
        .await;
        let read = store.read_stream(s, ..).await.expect("read");
        assert_eq!(read.len(), 1, "stream {s:?}");
        assert_eq!(read[0].stream_id, *s);
        assert_eq!(json(&read[0].payload), payload);
    }
    // `LIKE`-style wildcards must not match other streams.
    assert!(
        store
            .read_stream("percent%", ..)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(all_events(&store).await.len(), hostile.len());
}

/// A 1 MB payload is stored and read back intact.
pub async fn one_megabyte_payload<S: EventStore>(store: S) {
    let text: String = "0123456789abcdef".repeat(1 << 16);
    assert_eq!(text.len(), 1 << 20);
    let payload = serde_json::json!({ "blob": text });
    append_ok(
        &store,
        "big-1",
        ExpectedVersion::NoStream,
        vec![event("Big", payload.clone())],
    )
    .await;
    let read = store.read_stream("big-1", ..).await.expect("read");
    assert_eq!(json(&read[0].payload), payload);
}

/// Invalid stream ids and empty batches are typed errors that write nothing.
pub async fn invalid_input_is_rejected<S: EventStore>(store: S) {
    let long = "x".repeat(annals::MAX_STREAM_ID_LEN + 1);
    for bad in ["", "nul\0inside", long.as_str()] {
        match store
            .append(bad, ExpectedVersion::Any, vec![numbered(1)])
            .await
        {
            Err(StoreError::InvalidStreamId { stream, .. }) => assert_eq!(stream, bad),
            other => panic!("expected InvalidStreamId for {bad:?}, got {other:?}"),
        }
        assert!(matches!(
            store.read_stream(bad, ..).await,
            Err(StoreError::InvalidStreamId { .. })
        ));
    }
    assert!(matches!(
        store
            .append("empty-1", ExpectedVersion::Any, Vec::new())
            .await,
        Err(StoreError::EmptyAppend { .. })
    ));
    assert!(all_events(&store).await.is_empty());
}

/// An event no code knows, or a payload that does not fit its type, fails the load with an
/// error naming the stream, version and global position; it is never skipped.
pub async fn undecodable_events_name_stream_and_position<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let _ = accounts
        .execute("a1", Open("Ann".into()))
        .await
        .expect("open");
    let done = append_ok(
        &store,
        "account-a1",
        ExpectedVersion::Exact(1),
        vec![event("Frozen", serde_json::json!({}))],
    )
    .await;
    match accounts.load("a1").await {
        Err(Error::Decode(e)) => {
            assert_eq!(
                (e.stream.as_str(), e.stream_version, e.position),
                ("account-a1", 2, done.last_position)
            );
            assert_eq!((e.name.as_str(), e.version), ("Frozen", 1));
            assert!(matches!(e.kind, DecodeErrorKind::UnknownEvent));
            let message = e.to_string();
            assert!(
                message.contains("account-a1") && message.contains("Frozen"),
                "{message}"
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let _ = accounts
        .execute("a2", Open("Bob".into()))
        .await
        .expect("open");
    append_ok(
        &store,
        "account-a2",
        ExpectedVersion::Exact(1),
        vec![event("Deposited", serde_json::json!({"amount": "ten"}))],
    )
    .await;
    match accounts.load("a2").await {
        Err(Error::Decode(e)) => assert!(matches!(e.kind, DecodeErrorKind::Payload(_)), "{e}"),
        other => panic!("expected a payload error, got {other:?}"),
    }
    // A command on the broken stream fails rather than deciding on partial state.
    assert!(accounts.execute("a2", Deposit(1)).await.is_err());
    assert_eq!(
        store.stream_version("account-a2").await.expect("version"),
        2
    );
}

/// Stored old versions load through the upcasters (a rename included), payloads are read
/// tolerantly, and `schema::verify` names the stored pairs no code decodes.
pub async fn old_event_versions_load_through_upcasters<S: EventStore>(store: S) {
    let versioned = |name: &str, version: u32, payload: serde_json::Value| {
        NewEvent::new(name, version, to_raw_value(&payload).expect("json"))
    };
    append_ok(
        &store,
        "ledger-l1",
        ExpectedVersion::NoStream,
        vec![
            versioned("Posted", 1, serde_json::json!({ "units": 2 })),
            // An unknown field is ignored; the missing `note` takes its default.
            versioned(
                "EntryRecorded",
                2,
                serde_json::json!({ "cents": 5, "currency": "EUR" }),
            ),
            versioned(
                "EntryRecorded",
                2,
                serde_json::json!({ "cents": 1, "note": "fee" }),
            ),
        ],
    )
    .await;
    let ledgers = Repository::<Ledger, _>::new(store.clone());
    let ledger = ledgers.load("l1").await.expect("load");
    assert_eq!(ledger.state().cents, 206);
    assert_eq!(ledger.state().notes, ["", "", "fee"]);
    let report = verify_settled(&store, 3).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.stored[&("Posted".to_string(), 1)].count, 1);
    assert_eq!(report.stored[&("EntryRecorded".to_string(), 2)].count, 2);

    // A version newer than the code is an error, never skipped.
    let done = append_ok(
        &store,
        "ledger-l1",
        ExpectedVersion::Exact(3),
        vec![versioned(
            "EntryRecorded",
            3,
            serde_json::json!({ "cents": 1 }),
        )],
    )
    .await;
    match ledgers.load("l1").await {
        Err(Error::Decode(e)) => {
            assert_eq!(
                (e.stream.as_str(), e.stream_version, e.position),
                ("ledger-l1", 4, done.last_position)
            );
            assert_eq!((e.name.as_str(), e.version), ("EntryRecorded", 3));
            assert!(matches!(e.kind, DecodeErrorKind::UnknownEvent));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let report = verify_settled(&store, 4).await;
    assert_eq!(report.unknown, [("EntryRecorded".to_string(), 3)]);
}

/// Correlation, causation, actor and headers flow from the command context to every event.
pub async fn command_metadata_flows_to_events<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let ctx = CommandContext::new()
        .with_actor("teller-7")
        .with_header("ip", "10.0.0.1");
    let _ = accounts
        .execute_with("m1", Open("Ann".into()), &ctx)
        .await
        .expect("open");
    let opened = accounts
        .history("m1")
        .await
        .expect("history")
        .remove(0)
        .record;
    assert_eq!(opened.metadata.correlation_id, ctx.correlation_id());
    assert_eq!(opened.metadata.causation_id, ctx.causation_id());
    assert_eq!(opened.metadata.actor.as_deref(), Some("teller-7"));
    assert_eq!(
        opened.metadata.headers.get("ip").map(String::as_str),
        Some("10.0.0.1")
    );
    assert_eq!(
        opened.event_id.get_version_num(),
        7,
        "event ids are UUID v7"
    );

    // A follow-up command caused by that event joins its conversation.
    let follow = CommandContext::caused_by(&opened);
    let _ = accounts
        .execute_with("m1", Deposit(5), &follow)
        .await
        .expect("deposit");
    let deposited = accounts
        .history("m1")
        .await
        .expect("history")
        .remove(1)
        .record;
    assert_eq!(deposited.metadata.correlation_id, ctx.correlation_id());
    assert_eq!(deposited.metadata.causation_id, opened.event_id);
}

/// `load_at_version`, `load_as_of` and `history` see the past exactly.
pub async fn temporal_queries_and_history<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let _ = accounts
        .execute("t1", Open("Ann".into()))
        .await
        .expect("open");
    for amount in [10, 20, 30] {
        let _ = accounts
            .execute("t1", Deposit(amount))
            .await
            .expect("deposit");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        accounts.load_at_version("t1", 0).await.expect("v0").balance,
        0
    );
    let v3 = accounts.load_at_version("t1", 3).await.expect("v3");
    assert_eq!((v3.version(), v3.balance), (3, 30));
    match accounts.load_at_version("t1", 9).await {
        Err(Error::VersionNotFound {
            requested: 9,
            current: 4,
            ..
        }) => {}
        other => panic!("expected VersionNotFound, got {other:?}"),
    }

    let history = accounts.history("t1").await.expect("history");
    assert_eq!(history.len(), 4);
    let second = &history[2].record;
    let as_of = accounts
        .load_as_of("t1", second.recorded_at)
        .await
        .expect("as of");
    assert_eq!((as_of.version(), as_of.balance), (3, 30));
    let before = accounts
        .load_as_of(
            "t1",
            history[0].record.recorded_at - chrono::Duration::seconds(1),
        )
        .await
        .expect("before");
    assert_eq!(before.version(), 0);
    assert_eq!(accounts.load("t1").await.expect("now").balance, 60);
}

/// 16 tasks each run 50 deposits on one account: every deposit lands once, versions contiguous.
pub async fn concurrent_commands_on_one_stream<S: EventStore>(store: S) {
    hammer_one_stream(store, 16, 50, 0).await;
}

/// The same contention through a repository with an aggregate cache: an entry is held by
/// one command at a time, and every stale decision is caught by the expected version.
pub async fn concurrent_cached_commands_on_one_stream<S: EventStore>(store: S) {
    hammer_one_stream(store, 16, 50, 100).await;
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

/// Whether events of different streams share a `key`: the backend tests tell a commit by
/// it, to see that group commit wrote appends together.
pub fn streams_share<K: std::hash::Hash + Eq>(
    events: &[RecordedEvent],
    key: impl Fn(&RecordedEvent) -> K,
) -> bool {
    let mut streams = std::collections::HashMap::<K, &str>::new();
    events.iter().any(|event| {
        let first = *streams.entry(key(event)).or_insert(&event.stream_id);
        first != event.stream_id
    })
}

/// A `#[command(create)]` on an aggregate that is not cached bets that its stream is new.
/// Whatever the bet gives, the outcome is the one the real state decides, and a lost bet
/// is not an attempt: it never exhausts the retries.
pub async fn creating_commands_bet_on_a_new_stream<S: EventStore>(store: S) {
    use crate::domain::{AccountError, Issue, Stamp, Ticket, TicketError};

    let accounts = Repository::<Account, _>::new(store.clone()).with_max_attempts(1);
    let done = accounts
        .execute("b1", Open("Ann".into()))
        .await
        .expect("open");
    assert_eq!((done.stream_version, done.attempts), (1, 1), "a won bet");
    // The bet appends, conflicts and writes nothing; the loaded state rejects.
    match accounts.execute("b1", Open("Bob".into())).await {
        Err(ExecuteError::Rejected(AccountError::AlreadyOpen)) => {}
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    let account = accounts.load("b1").await.expect("load");
    assert_eq!(
        (account.version(), account.owner.as_deref()),
        (1, Some("Ann")),
        "a lost bet writes nothing"
    );

    let tickets = Repository::<Ticket, _>::new(store.clone()).with_max_attempts(1);
    tickets
        .execute("t1", Issue("printer".into()))
        .await
        .expect("issue");
    // Lost bet, and the real state decides nothing.
    let again = tickets
        .execute("t1", Issue("printer".into()))
        .await
        .expect("issue again");
    assert_eq!(
        (again.events.len(), again.stream_version, again.attempts),
        (0, 1, 1),
        "a repeated issue"
    );
    match tickets.execute("t1", Issue("scanner".into())).await {
        Err(ExecuteError::Rejected(TicketError::AlreadyIssued(title))) => {
            assert_eq!(title, "printer");
        }
        other => panic!("expected AlreadyIssued, got {other:?}"),
    }
    // Rejected on the default state: no bet; the real state accepts.
    let stamped = tickets.execute("t1", Stamp).await.expect("stamp");
    assert_eq!((stamped.stream_version, stamped.attempts), (2, 1));
    match tickets.execute("t2", Stamp).await {
        Err(ExecuteError::Rejected(TicketError::NotIssued)) => {}
        other => panic!("expected NotIssued, got {other:?}"),
    }
    assert_eq!(store.stream_version("ticket-t2").await.expect("version"), 0);

    // A cached aggregate decides on its cached state, with no bet.
    let cached = Repository::<Account, _>::new(store.clone()).with_cache(4);
    cached
        .execute("b2", Open("Ann".into()))
        .await
        .expect("open");
    match cached.execute("b2", Open("Bob".into())).await {
        Err(ExecuteError::Rejected(AccountError::AlreadyOpen)) => {}
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    let ticket = tickets.load("t1").await.expect("load");
    assert_eq!(
        (ticket.title.as_deref(), ticket.stamps),
        (Some("printer"), 1)
    );
}

/// A cached aggregate decides without reading, reads only the events another writer added
/// when its append conflicts, and survives rejections and empty decisions.
pub async fn cached_aggregates_catch_up_with_other_writers<S: EventStore>(store: S) {
    let cached = Repository::<Account, _>::new(store.clone()).with_cache(10);
    let plain = Repository::<Account, _>::new(store.clone());
    cached
        .execute("c1", Open("Ann".into()))
        .await
        .expect("open");
    for amount in 1..=3 {
        let done = cached
            .execute("c1", Deposit(amount))
            .await
            .expect("deposit");
        assert_eq!(done.attempts, 1, "a warm cache decides at once");
    }
    // Another writer appends twice behind the cache's back.
    plain.execute("c1", Deposit(10)).await.expect("deposit");
    plain.execute("c1", Deposit(20)).await.expect("deposit");
    let done = cached.execute("c1", Deposit(100)).await.expect("deposit");
    assert_eq!((done.stream_version, done.attempts), (7, 2));
    // A rejection leaves the cached state as it was.
    match cached.execute("c1", Open("Bob".into())).await {
        Err(ExecuteError::Rejected(e)) => assert_eq!(e, crate::domain::AccountError::AlreadyOpen),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let done = cached.execute("c1", Deposit(1000)).await.expect("deposit");
    assert_eq!((done.stream_version, done.attempts), (8, 1));
    let account = plain.load("c1").await.expect("load");
    assert_eq!((account.balance, account.deposits), (1136, 7));
    // Entries beyond the capacity are dropped, never wrong: 30 accounts through a cache
    // of 10, then each account once more.
    for n in 0..30 {
        cached
            .execute(&format!("many-{n}"), Open("Ann".into()))
            .await
            .expect("open");
    }
    for n in 0..30 {
        let id = format!("many-{n}");
        let done = cached.execute(&id, Deposit(n)).await.expect("deposit");
        assert_eq!(done.stream_version, 2, "{id}");
    }
    for n in 0..30 {
        assert_eq!(
            plain
                .load(&format!("many-{n}"))
                .await
                .expect("load")
                .balance,
            n
        );
    }
}

/// `fold_stream`, the lean read aggregates load with, sees exactly what `read_stream`
/// sees, for whole streams and for ranges.
pub async fn fold_stream_matches_read_stream<S: EventStore>(store: S) {
    append_ok(
        &store,
        "lean-1",
        ExpectedVersion::NoStream,
        (1..=5).map(numbered).collect(),
    )
    .await;
    append_ok(
        &store,
        "lean-2",
        ExpectedVersion::NoStream,
        vec![numbered(9)],
    )
    .await;
    append_ok(
        &store,
        "lean-1",
        ExpectedVersion::Exact(5),
        vec![event("Other", serde_json::json!({"x": [1, "two"]}))],
    )
    .await;
    for range in [
        VersionRange::new(..),
        VersionRange::new(3..),
        VersionRange::new(2..=4),
        VersionRange::new(7..),
    ] {
        let full = store
            .read_stream("lean-1", range.from..=range.to)
            .await
            .expect("read");
        let mut lean = Vec::new();
        store
            .fold_stream("lean-1", range, |e| {
                lean.push((
                    e.stream_version,
                    e.position,
                    e.name.to_owned(),
                    e.version,
                    e.payload.to_owned(),
                ));
                Ok::<_, StoreError>(())
            })
            .await
            .expect("fold");
        let expected: Vec<_> = full
            .iter()
            .map(|e| {
                (
                    e.stream_version,
                    e.position,
                    e.name.clone(),
                    e.version,
                    e.payload.get().to_owned(),
                )
            })
            .collect();
        assert_eq!(lean, expected, "range {range:?}");
    }
    // The callback's error stops the fold and comes back as is.
    let mut seen = 0;
    let stopped = store
        .fold_stream("lean-1", VersionRange::new(..), |_| {
            seen += 1;
            if seen == 2 {
                Err(StoreError::backend(std::io::Error::other("stop")))
            } else {
                Ok(())
            }
        })
        .await;
    assert!(stopped.is_err());
    assert_eq!(seen, 2);
}

/// `fold_all` and `catch_up`, the lean global reads, see exactly what `read_all` sees:
/// the same events, checkpoints and order, from any checkpoint, with any limit.
pub async fn fold_all_matches_read_all<S: EventStore>(store: S) {
    for (stream, n) in [("all-a", 3u64), ("all-b", 1), ("all-a", 2), ("all-c", 4)] {
        let events = (0..n).map(numbered).collect();
        append_ok(&store, stream, ExpectedVersion::Any, events).await;
    }
    let full = store
        .read_all(Checkpoint::START, usize::MAX)
        .await
        .expect("read_all");
    assert_eq!(full.len(), 10);
    let view = |checkpoint: Checkpoint, e: StoredEvent<'_>| {
        (
            checkpoint,
            e.stream_id.to_owned(),
            e.stream_version,
            e.position,
            e.name.to_owned(),
            e.version,
            e.payload.to_owned(),
        )
    };
    let expected: Vec<_> = full
        .iter()
        .map(|e| view(e.checkpoint(), StoredEvent::of(e)))
        .collect();
    for start in [0, 1, 4, 9, 10] {
        let after = match start {
            0 => Checkpoint::START,
            n => full[n - 1].checkpoint(),
        };
        for limit in [1, 3, 100] {
            let mut lean = Vec::new();
            let seen = store
                .fold_all(after, limit, |checkpoint, e| {
                    lean.push(view(checkpoint, e));
                    Ok::<_, StoreError>(())
                })
                .await
                .expect("fold_all");
            let want: Vec<_> = expected[start..].iter().take(limit).cloned().collect();
            assert_eq!(seen, want.len());
            assert_eq!(lean, want, "after event {start}, limit {limit}");
        }
        let mut caught = Vec::new();
        let last = store
            .catch_up(after, |checkpoint, e| {
                caught.push(view(checkpoint, e));
                Ok::<_, StoreError>(())
            })
            .await
            .expect("catch_up");
        assert_eq!(caught, expected[start..], "catch-up after event {start}");
        assert_eq!(
            last,
            full[9].checkpoint(),
            "catch-up ends at the last event"
        );
    }
    // The callback's error stops the read and comes back as is.
    let mut seen = 0;
    let stopped = store
        .catch_up(Checkpoint::START, |_, _| {
            seen += 1;
            if seen == 3 {
                Err(StoreError::backend(std::io::Error::other("stop")))
            } else {
                Ok(())
            }
        })
        .await;
    assert!(stopped.is_err());
    assert_eq!(seen, 3);
}

/// `tasks` tasks each run `commands` deposits on one account through `Repository::execute`,
/// then the balance, the deposit count and the versions (1..=N, no gap, no duplicate) are
/// checked. Returns how many attempts the commands took in all (conflicts are retried).
pub async fn hammer_one_stream<S: EventStore>(
    store: S,
    tasks: u64,
    commands: u64,
    cache: usize,
) -> u64 {
    let accounts = Arc::new(
        Repository::<Account, _>::new(store.clone())
            .with_max_attempts(100_000)
            .with_cache(cache),
    );
    let _ = accounts
        .execute("hot", Open("Ann".into()))
        .await
        .expect("open");
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let accounts = Arc::clone(&accounts);
            tokio::spawn(async move {
                let mut attempts = 0u64;
                for i in 0..commands {
                    let done = accounts
                        .execute("hot", Deposit(t * 1000 + i + 1))
                        .await
                        .expect("deposit");
                    attempts += u64::from(done.attempts);
                }
                attempts
            })
        })
        .collect();
    let mut attempts = 0;
    for handle in handles {
        attempts += handle.await.expect("task");
    }
    let expected_balance: u64 = (0..tasks)
        .flat_map(|t| (0..commands).map(move |i| t * 1000 + i + 1))
        .sum();
    let account = accounts.load("hot").await.expect("load");
    assert_eq!(account.balance, expected_balance);
    assert_eq!(u64::from(account.deposits), tasks * commands);
    let versions: Vec<u64> = store
        .read_stream("account-hot", ..)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(
        versions,
        (1..=tasks * commands + 1).collect::<Vec<_>>(),
        "versions 1..=N without gap or duplicate"
    );
    assert!(attempts >= tasks * commands);
    attempts
}

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

/// The stream's snapshot once one at `version` or later is stored (snapshots are written
/// by a task of their own).
async fn snapshot_at<S: EventStore>(store: &S, stream: &str, version: u64) -> SnapshotRecord {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = store.read_snapshot(stream).await.expect("read snapshot");
        if let Some(snapshot) = found.filter(|s| s.version >= version) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot of {stream} at version {version} after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Waits until the stream's snapshot satisfies `ok`.
async fn snapshot_until<S: EventStore>(
    store: &S,
    stream: &str,
    ok: impl Fn(&SnapshotRecord) -> bool,
) -> SnapshotRecord {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = store.read_snapshot(stream).await.expect("read snapshot");
        if let Some(snapshot) = found.filter(&ok) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "snapshot of {stream} not rewritten after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A snapshot of `ledger-{id}` with a made-up state, to tell whether a load used it.
fn doctored(id: &str, version: u64, fingerprint: u64, state: &str) -> SnapshotRecord {
    SnapshotRecord {
        stream_id: format!("ledger-{id}"),
        version,
        fingerprint,
        state: state.to_owned(),
        taken_at: Utc::now(),
    }
}

/// Appends twelve `Credited { amount: 1 }` to `ledger-{id}` directly, without the
/// repository, so no snapshot is written in the background; `pause` between them.
async fn twelve_credits<S: EventStore>(
    store: &S,
    id: &str,
    pause: std::time::Duration,
) -> Repository<v1::Ledger, S> {
    let stream = format!("ledger-{id}");
    for v in 0..12 {
        let credit = event("Credited", serde_json::json!({ "amount": 1 }));
        append_ok(store, &stream, ExpectedVersion::Exact(v), vec![credit]).await;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Repository::<v1::Ledger, _>::new(store.clone())
}

const NO_PAUSE: std::time::Duration = std::time::Duration::ZERO;

/// Commands take a snapshot every N events without waiting for it; loads and commands
/// start from it.
pub async fn snapshots_are_taken_and_used<S: EventStore>(store: S) {
    let ledgers = Repository::<v1::Ledger, _>::new(store.clone());
    for _ in 0..12 {
        let _ = ledgers.execute("s0", Credit(1)).await.expect("credit");
    }
    // Taken at 5 and 10; a command that ran before a write landed may take one at 11 or 12.
    let snapshot = snapshot_at(&store, "ledger-s0", 10).await;
    assert_eq!(snapshot.fingerprint, v1::Ledger::SNAPSHOT_FINGERPRINT);
    let state: serde_json::Value = serde_json::from_str(&snapshot.state).expect("json");
    let v = snapshot.version;
    assert_eq!(state, serde_json::json!({ "total": v, "credits": v }));
    let loaded = ledgers.load("s0").await.expect("load");
    assert_eq!(
        (loaded.version(), loaded.total, loaded.credits),
        (12, 12, 12)
    );

    // A made-up state at version 10 shows loads and commands start there.
    let ledgers = twelve_credits(&store, "s1", NO_PAUSE).await;
    let fp = v1::Ledger::SNAPSHOT_FINGERPRINT;
    let fake = doctored("s1", 10, fp, r#"{"total":1000,"credits":10}"#);
    store.write_snapshot(fake).await.expect("write");
    let loaded = ledgers.load("s1").await.expect("load");
    assert_eq!((loaded.version(), loaded.total), (12, 1002));
    let done = ledgers.execute("s1", Credit(1)).await.expect("credit");
    assert_eq!(done.stream_version, 13);
    assert_eq!(ledgers.load("s1").await.expect("load").total, 1003);
    // A creating command's lost bet loads from the snapshot too (a replay would give 14).
    let done = ledgers.execute("s1", Grant(1)).await.expect("grant");
    assert_eq!((done.stream_version, done.attempts), (14, 1));
    assert_eq!(ledgers.load("s1").await.expect("load").total, 1004);

    // Aggregates without `snapshot_every` never take one.
    let accounts = Repository::<Account, _>::new(store.clone());
    let _ = accounts.execute("s1", Open("Ann".into())).await;
    for _ in 0..12 {
        let _ = accounts.execute("s1", Deposit(1)).await.expect("deposit");
    }
    assert_eq!(accounts.load("s1").await.expect("load").balance, 12);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        store
            .read_snapshot("account-s1")
            .await
            .expect("read")
            .is_none()
    );
}

/// A stream with no snapshot replays in full, and the load writes one.
pub async fn missing_snapshot_falls_back_and_is_written<S: EventStore>(store: S) {
    let ledgers = twelve_credits(&store, "m1", NO_PAUSE).await;
    assert!(
        store
            .read_snapshot("ledger-m1")
            .await
            .expect("read")
            .is_none()
    );
    let loaded = ledgers.load("m1").await.expect("load");
    assert_eq!((loaded.version(), loaded.total), (12, 12));
    let snapshot = snapshot_at(&store, "ledger-m1", 12).await;
    assert_eq!(snapshot.version, 12);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&snapshot.state).expect("json"),
        serde_json::json!({ "total": 12, "credits": 12 })
    );
}

/// A snapshot that is not JSON of the state replays in full and is rewritten; a command
/// after it is right too.
pub async fn corrupt_snapshot_falls_back_and_is_rewritten<S: EventStore>(store: S) {
    let ledgers = twelve_credits(&store, "c1", NO_PAUSE).await;
    let fp = v1::Ledger::SNAPSHOT_FINGERPRINT;
    let states = ["not json {", r#"{"total":"many"}"#, r#"{"total":1}"#];
    for (i, state) in states.iter().enumerate() {
        let version = 12 + i as u64;
        let corrupt = doctored("c1", version, fp, state);
        store.write_snapshot(corrupt).await.expect("write");
        let loaded = ledgers.load("c1").await.expect("load");
        assert_eq!((loaded.version(), loaded.total), (version, 12), "{state}");
        let rewritten = snapshot_until(&store, "ledger-c1", |s| s.state != *state).await;
        assert_eq!(rewritten.version, version);
        let _: v1::Ledger = serde_json::from_str(&rewritten.state).expect("state");
        // A command reading the corrupt snapshot replays too.
        let corrupt = doctored("c1", version, fp, state);
        store.write_snapshot(corrupt).await.expect("write");
        let done = ledgers.execute("c1", Credit(0)).await.expect("credit");
        assert_eq!(done.stream_version, version + 1);
    }
    let loaded = ledgers.load("c1").await.expect("load");
    assert_eq!((loaded.credits, loaded.total), (15, 12));
}

/// A snapshot of another fingerprint (another `#[apply]` body, another `snapshot_version`,
/// any other tag) is ignored: full replay with the current code.
pub async fn snapshot_of_another_fingerprint_is_ignored<S: EventStore>(store: S) {
    let (fp1, fp2, fp3) = (
        v1::Ledger::SNAPSHOT_FINGERPRINT,
        v2::Ledger::SNAPSHOT_FINGERPRINT,
        v3::Ledger::SNAPSHOT_FINGERPRINT,
    );
    assert!(fp1 != fp2 && fp2 != fp3 && fp1 != fp3, "{fp1} {fp2} {fp3}");

    // v1's honest snapshot at 10; v2 (changed apply body) must not start from it.
    let v1s = twelve_credits(&store, "f1", NO_PAUSE).await;
    let honest = doctored("f1", 10, fp1, r#"{"total":10,"credits":10}"#);
    store.write_snapshot(honest).await.expect("write");
    assert_eq!(v1s.load("f1").await.expect("load v1").total, 12);
    let v2s = Repository::<v2::Ledger, _>::new(store.clone());
    let loaded = v2s.load("f1").await.expect("load v2");
    assert_eq!((loaded.version(), loaded.total), (12, 24));
    let rewritten = snapshot_until(&store, "ledger-f1", |s| s.fingerprint == fp2).await;
    assert_eq!(rewritten.version, 12);

    // v3 is v2 with `snapshot_version = 1`: v2's snapshot is ignored too.
    let fake = doctored("f1", 12, fp2, r#"{"total":1000,"credits":12}"#);
    store.write_snapshot(fake).await.expect("write");
    assert_eq!(v2s.load("f1").await.expect("load v2").total, 1000);
    let v3s = Repository::<v3::Ledger, _>::new(store.clone());
    assert_eq!(v3s.load("f1").await.expect("load v3").total, 24);

    // Any other tag, same version and state shape.
    let fake = doctored("f1", 12, fp1 ^ 1, r#"{"total":1000,"credits":12}"#);
    store.write_snapshot(fake).await.expect("write");
    assert_eq!(v1s.load("f1").await.expect("load v1").total, 12);
}

/// A snapshot beyond the stream's last event is ignored and rewritten.
pub async fn snapshot_ahead_of_the_stream_is_ignored<S: EventStore>(store: S) {
    let ledgers = twelve_credits(&store, "a1", NO_PAUSE).await;
    let fp = v1::Ledger::SNAPSHOT_FINGERPRINT;
    let ahead = doctored("a1", 1000, fp, r#"{"total":1000,"credits":1000}"#);
    store.write_snapshot(ahead).await.expect("write");
    let loaded = ledgers.load("a1").await.expect("load");
    assert_eq!((loaded.version(), loaded.total), (12, 12));
    let rewritten = snapshot_until(&store, "ledger-a1", |s| s.version == 12).await;
    assert_eq!(rewritten.fingerprint, fp);
    let ahead = doctored("a1", 1000, fp, r#"{"total":1000,"credits":1000}"#);
    store.write_snapshot(ahead).await.expect("write");
    let done = ledgers.execute("a1", Credit(1)).await.expect("credit");
    assert_eq!(done.stream_version, 13);
    assert_eq!(ledgers.load("a1").await.expect("load").total, 13);
}

/// `load_at_version` and `load_as_of` use a snapshot only when it is not newer than the
/// target.
pub async fn temporal_queries_use_only_older_snapshots<S: EventStore>(store: S) {
    let pause = std::time::Duration::from_millis(3);
    let ledgers = twelve_credits(&store, "t1", pause).await;
    // A made-up state at version 10 shows which queries start from it.
    let fp = v1::Ledger::SNAPSHOT_FINGERPRINT;
    let fake = doctored("t1", 10, fp, r#"{"total":1000,"credits":10}"#);
    store.write_snapshot(fake).await.expect("write");

    let at = |v| ledgers.load_at_version("t1", v);
    assert_eq!(at(5).await.expect("v5").total, 5);
    assert_eq!(at(9).await.expect("v9").total, 9);
    assert_eq!(at(10).await.expect("v10").total, 1000);
    let v11 = at(11).await.expect("v11");
    assert_eq!((v11.version(), v11.total), (11, 1001));
    assert!(matches!(
        at(13).await,
        Err(Error::VersionNotFound { current: 12, .. })
    ));

    let history = ledgers.history("t1").await.expect("history");
    let time_of = |v: usize| history[v - 1].record.recorded_at;
    let as_of = |t| ledgers.load_as_of("t1", t);
    let early = as_of(time_of(3)).await.expect("as of v3");
    assert_eq!((early.version(), early.total), (3, 3));
    let before = as_of(time_of(10)).await.expect("as of v10");
    assert_eq!((before.version(), before.total), (10, 10));
    let late = as_of(time_of(11)).await.expect("as of v11");
    assert_eq!((late.version(), late.total), (11, 1001));
    let now = as_of(Utc::now()).await.expect("as of now");
    assert_eq!((now.version(), now.total), (12, 1002));
}
