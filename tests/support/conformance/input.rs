//! Input: hostile strings, a large payload and invalid arguments.

use annals::StoreError;
use annals::prelude::*;

use super::helpers::{all_events, append_ok, event, json, numbered};

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

/// Every backend takes the same event names and versions: a name with a stray character
/// (a trailing space, a NUL, a leading digit) or a version above `MAX_EVENT_VERSION` is a
/// typed error and writes nothing, never a name or number stored as another.
pub async fn event_names_and_versions_are_checked_alike<S: EventStore>(store: S) {
    let payload = || serde_json::value::to_raw_value(&1).expect("json");
    for name in [
        "account.deposited",
        "Überweisung",
        "v2/Opened",
        "_internal:tick",
    ] {
        let event = NewEvent::new(name, 1, payload()).expect("a valid event name");
        append_ok(&store, "names-ok", ExpectedVersion::Any, vec![event]).await;
    }
    let stored: Vec<String> = store
        .read_stream("names-ok", ..)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        stored,
        [
            "account.deposited",
            "Überweisung",
            "v2/Opened",
            "_internal:tick"
        ]
    );
    let long = "x".repeat(annals::MAX_EVENT_NAME_LEN + 1);
    for name in [
        "OrderPlaced ",
        "Order\0Placed",
        "",
        "7Placed",
        "Order Placed",
        &long,
    ] {
        assert!(
            NewEvent::new(name, 1, payload()).is_err(),
            "NewEvent::new takes {name:?}"
        );
        // A name changed after construction is checked again when appended.
        let mut event = NewEvent::new("Placeholder", 1, payload()).expect("a valid event name");
        event.name = name.to_owned();
        match store
            .append("names-bad", ExpectedVersion::Any, vec![event])
            .await
        {
            Err(StoreError::InvalidEventName {
                stream, name: got, ..
            }) => {
                assert_eq!((stream.as_str(), got.as_str()), ("names-bad", name));
            }
            other => panic!("expected {name:?} to be refused, got {other:?}"),
        }
    }
    let huge = NewEvent::new("Huge", annals::MAX_EVENT_VERSION + 1, payload())
        .expect("a valid event name");
    match store
        .append("names-bad", ExpectedVersion::Any, vec![huge])
        .await
    {
        Err(StoreError::OutOfRange {
            field, value, max, ..
        }) => assert_eq!(
            (field, value, max),
            (
                "event version",
                u64::from(annals::MAX_EVENT_VERSION) + 1,
                u64::from(annals::MAX_EVENT_VERSION)
            )
        ),
        other => panic!("expected the version to be refused, got {other:?}"),
    }
    assert_eq!(store.stream_version("names-bad").await.expect("version"), 0);
}
