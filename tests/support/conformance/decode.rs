//! Decoding: an unreadable event fails its load loudly; old versions go through upcasters.

use annals::prelude::*;
use annals::{DecodeErrorKind, RepositoryError};
use serde_json::value::to_raw_value;

use crate::domain::{Account, Deposit, Ledger, Open};

use super::helpers::{append_ok, event, verify_settled};

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
        Err(RepositoryError::Decode(e)) => {
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
        Err(RepositoryError::Decode(e)) => {
            assert!(matches!(e.kind, DecodeErrorKind::Payload(_)), "{e}")
        }
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
        Err(RepositoryError::Decode(e)) => {
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
