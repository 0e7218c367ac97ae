//! Snapshots: taken in the background, used when they fit, ignored and rewritten when not.

use annals::RepositoryError;
use annals::prelude::*;
use chrono::Utc;

use crate::domain::ledger::{Credit, Grant, v1, v2, v3};
use crate::domain::{Account, Deposit, Open};

use super::helpers::{NO_PAUSE, doctored, snapshot_at, snapshot_until, twelve_credits};

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
        Err(RepositoryError::VersionNotFound { current: 12, .. })
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
