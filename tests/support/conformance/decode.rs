//! Decoding: an unreadable event fails its load loudly; old versions go through upcasters.

use annals::prelude::*;
use annals::{DecodeErrorKind, RepositoryError};
use serde_json::value::to_raw_value;

use crate::domain::{Account, Deposit, Ledger, Open};

use super::helpers::{all_events, append_ok, event, verify_settled};

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
            .expect("a valid event name")
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

/// An old event whose upcaster reads the stored record decodes with that record: the
/// repository reads full records for such an aggregate, loads and commands alike. A lean
/// view, which carries no record, reports what it lacks instead of guessing.
pub async fn old_events_upcast_with_their_stored_record<S: EventStore>(store: S) {
    use crate::domain::membership::{Join, Member, MemberEvent};

    let metadata = annals::Metadata {
        actor: Some("bob".to_owned()),
        ..annals::Metadata::root(uuid::Uuid::now_v7())
    };
    let v1 = NewEvent::new(
        "Joined",
        1,
        to_raw_value(&serde_json::json!({ "name": "ann" })).expect("json"),
    )
    .expect("a valid event name")
    .with_metadata(metadata);
    append_ok(&store, "member-m1", ExpectedVersion::NoStream, vec![v1]).await;
    let recorded_at = store.read_stream("member-m1", ..).await.expect("read")[0].recorded_at;

    let members = Repository::<Member, _>::new(store.clone());
    let member = members.load("m1").await.expect("load through the upcaster");
    assert_eq!(member.joined_at, Some(recorded_at));
    assert_eq!(member.invited_by.as_deref(), Some("bob"));
    let done = members
        .execute("m1", Join("ann".to_owned()))
        .await
        .expect("a command loads the same way");
    assert_eq!(done.stream_version, 2);
    let member = members.load("m1").await.expect("load");
    assert_eq!(member.names, ["ann", "ann"]);
    assert_eq!(member.joined_at, Some(recorded_at));

    let all = all_events(&store).await;
    let upcast: Vec<MemberEvent> = all
        .iter()
        .map(|record| record.decode::<MemberEvent>().expect("a record decodes"))
        .collect();
    assert_eq!(upcast.len(), 2);
    // A store whose lean views are made of records decodes them; one that reads lean rows
    // says the record is needed. Never a guess, never a skip.
    let mut lean = Vec::new();
    let caught_up = store
        .catch_up(annals::Checkpoint::START, |_, e| {
            if e.stream_id == "member-m1" {
                lean.push(e.decode::<MemberEvent>()?);
            }
            Ok::<_, RepositoryError>(())
        })
        .await;
    match caught_up {
        Ok(_) => assert_eq!(format!("{lean:?}"), format!("{upcast:?}")),
        Err(RepositoryError::Decode(e)) => {
            assert!(
                matches!(e.kind, DecodeErrorKind::RecordNeeded { .. }),
                "{e}"
            );
            assert_eq!((e.stream.as_str(), e.stream_version), ("member-m1", 1));
        }
        Err(other) => panic!("expected the lean view to decode or ask for the record: {other}"),
    }
}
