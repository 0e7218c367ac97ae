//! Reads: stream ranges, the global order, and the lean folds that must see the same events.

use annals::prelude::*;
use annals::{Checkpoint, StoreError, StoredEvent, VersionRange};

use super::helpers::{all_events, append_ok, event, numbered, own, settled};

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
    // Like every reader of the global order, `read_all` sees the appends once they are past
    // the store's read horizon (on PostgreSQL, other tests' open transactions hold it back).
    let full = settled(
        "the appends are not visible to read_all",
        || async {
            store
                .read_all(Checkpoint::START, usize::MAX)
                .await
                .expect("read_all")
        },
        |events| events.len() >= 10,
    )
    .await;
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

/// The lean reads page through a stream longer than any page, through events large enough
/// to shrink a page and through events too large to share one, and lose or repeat nothing:
/// from any version, under any limit.
pub async fn lean_reads_cross_page_boundaries<S: EventStore>(store: S) {
    const LONG: u64 = 9_000;
    for batch in 0..LONG / 1_000 {
        let expected = match batch {
            0 => ExpectedVersion::NoStream,
            n => ExpectedVersion::Exact(n * 1_000),
        };
        let events = (1..=1_000).map(|i| numbered(batch * 1_000 + i)).collect();
        append_ok(&store, "long-1", expected, events).await;
    }
    let fill = "x".repeat(3 << 20);
    let big = |i: u64| event("Big", serde_json::json!({ "n": i, "fill": fill }));
    append_ok(
        &store,
        "big-1",
        ExpectedVersion::NoStream,
        (1..=4).map(big).collect(),
    )
    .await;
    let middling = |i: u64| {
        event(
            "Mid",
            serde_json::json!({ "n": i, "fill": fill[..10 << 10] }),
        )
    };
    append_ok(
        &store,
        "mid-1",
        ExpectedVersion::NoStream,
        (1..=600).map(middling).collect(),
    )
    .await;
    let number = |payload: &str| {
        let value: serde_json::Value = serde_json::from_str(payload).expect("stored JSON");
        value["n"].as_u64().expect("a numbered payload")
    };

    for (stream, range, want) in [
        ("long-1", VersionRange::new(..), 1..=LONG),
        ("long-1", VersionRange::new(4_000..=8_200), 4_000..=8_200),
        ("long-1", VersionRange::new(8_999..), 8_999..=LONG),
        ("big-1", VersionRange::new(..), 1..=4),
        ("big-1", VersionRange::new(2..=3), 2..=3),
        ("mid-1", VersionRange::new(..), 1..=600),
    ] {
        let mut seen = Vec::new();
        store
            .fold_stream(stream, range, |e| {
                seen.push((e.stream_version, number(e.payload)));
                Ok::<_, StoreError>(())
            })
            .await
            .expect("fold_stream");
        let want: Vec<_> = want.map(|v| (v, v)).collect();
        assert_eq!(seen, want, "{stream} {range:?}");
    }

    let mut first = store.read_stream("long-1", ..=1).await.expect("read");
    let after = first.pop().expect("the first event").checkpoint();
    let streams = |events: &[(String, u64)], name: &str| {
        events
            .iter()
            .filter(|(stream, _)| stream == name)
            .map(|(_, version)| *version)
            .collect::<Vec<_>>()
    };
    let caught = settled(
        "the appends are not visible to catch_up",
        || async {
            let mut caught = Vec::new();
            store
                .catch_up(after, |_, e| {
                    caught.push((e.stream_id.to_owned(), e.stream_version));
                    Ok::<_, StoreError>(())
                })
                .await
                .expect("catch_up");
            caught
        },
        |caught| streams(caught, "mid-1").len() == 600,
    )
    .await;
    assert_eq!(streams(&caught, "long-1"), (2..=LONG).collect::<Vec<_>>());
    assert_eq!(streams(&caught, "big-1"), [1, 2, 3, 4]);
    assert_eq!(streams(&caught, "mid-1"), (1..=600).collect::<Vec<_>>());

    for limit in [4_095, 4_096, 4_097, 5_000] {
        let mut folded = Vec::new();
        let seen = store
            .fold_all(after, limit, |_, e| {
                folded.push((e.stream_id.to_owned(), e.stream_version));
                Ok::<_, StoreError>(())
            })
            .await
            .expect("fold_all");
        assert_eq!(seen, limit);
        assert_eq!(folded, caught[..limit], "limit {limit}");
    }
}
