//! SQLite: what only its one writer connection shows.

/// Group commit on SQLite: the conformance check of concurrent appends on a file, and
/// some of those appends shared a transaction (one sync of the log). A transaction takes
/// its recording time once, so the events of one group share it; appends committed one by
/// one, each waiting for its own sync, never do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_shares_transactions() {
    let fixture = annals_tests::sqlite_file().await;
    let events =
        annals_tests::conformance::concurrent_appends_settle_each_on_its_own(fixture.store.clone())
            .await;
    assert!(
        annals_tests::conformance::streams_share(&events, |e| e.recorded_at),
        "320 concurrent appends on one writer never shared a commit"
    );
}

/// A stored time no clock can show is a corrupt snapshot, never 1970: reading the snapshot
/// says so, naming the stream, and a load goes on without it (snapshots are a cache).
#[tokio::test]
async fn a_corrupt_snapshot_time_is_reported_and_loads_replay() {
    use annals::prelude::*;
    use annals_tests::domain::ledger::{Credited, v1::Ledger};

    let dir = annals_tests::TempDir::new("annals-snapshot-time");
    let path = dir.path().join("events.db");
    let store = annals::SqliteStore::open(&path).await.expect("open");
    // Appended directly: no snapshot is written in the background.
    for version in 0..6 {
        let credit = NewEvent::from_event(&Credited { amount: 2 }).expect("encode");
        store
            .append("ledger-t1", ExpectedVersion::Exact(version), vec![credit])
            .await
            .expect("append");
    }
    store
        .write_snapshot(annals::SnapshotRecord {
            stream_id: "ledger-t1".to_owned(),
            version: 5,
            fingerprint: Ledger::SNAPSHOT_FINGERPRINT,
            state: r#"{"total":10,"credits":5}"#.to_owned(),
            taken_at: annals::chrono::Utc::now(),
        })
        .await
        .expect("write snapshot");
    // Another tool writes a time beyond what a timestamp can hold.
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .expect("connect");
    sqlx::query("UPDATE annals_snapshots SET taken_at = ? WHERE stream_id = 'ledger-t1'")
        .bind(i64::MAX)
        .execute(&mut other)
        .await
        .expect("doctor the snapshot");
    match store.read_snapshot("ledger-t1").await {
        Err(annals::StoreError::CorruptSnapshot { stream, reason }) => {
            assert_eq!(stream, "ledger-t1");
            assert!(reason.contains("out of range"), "{reason}");
        }
        other => panic!("expected a corrupt snapshot, got {other:?}"),
    }
    let ledgers = Repository::<Ledger, _>::new(store.clone());
    let loaded = ledgers.load("t1").await.expect("load without the snapshot");
    assert_eq!((loaded.version(), loaded.total), (6, 12));
}

/// A schema a newer release migrated (a version this code does not know) is refused with a
/// typed error naming both versions, and left as it is.
#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused() {
    let dir = annals_tests::TempDir::new("annals-schema-too-new");
    let path = dir.path().join("events.db");
    let store = annals::SqliteStore::open(&path).await.expect("open");
    store.close().await;
    let url = format!("sqlite://{}", path.display());
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query(
        "INSERT INTO annals_schema (version, description, applied_at) VALUES (99, 'future', 0)",
    )
    .execute(&mut other)
    .await
    .expect("record a future migration");
    match annals::SqliteStore::open(&path).await {
        Err(annals::OpenError::SchemaTooNew {
            backend,
            found,
            known,
        }) => {
            assert_eq!((backend, found), ("SQLite", 99));
            assert!((2..99).contains(&known), "{known}");
        }
        other => panic!("expected the schema to be refused, got {other:?}"),
    }
    let recorded: i64 = sqlx::query_scalar("SELECT MAX(version) FROM annals_schema")
        .fetch_one(&mut other)
        .await
        .expect("read");
    assert_eq!(recorded, 99, "nothing changed");
}

/// A stream that another tool wrote with a gap (versions 1 and 3) does not load as version
/// 3: the load, and the history, say which versions break the run and where.
#[tokio::test]
async fn a_stream_with_a_version_gap_does_not_load() {
    use annals::prelude::*;
    use annals_tests::domain::Account;

    let dir = annals_tests::TempDir::new("annals-gap");
    let path = dir.path().join("events.db");
    let store = annals::SqliteStore::open(&path).await.expect("open");
    let url = format!("sqlite://{}", path.display());
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    for (version, name, payload) in [
        (1, "Opened", r#"{"owner":"ann"}"#),
        (3, "Deposited", r#"{"amount":5}"#),
    ] {
        sqlx::query(
            "INSERT INTO annals_events (stream_id, stream_version, event_id, event_name, \
             event_version, payload, metadata, recorded_at) VALUES ('account-g1', ?, ?, ?, 1, ?, ?, 0)",
        )
        .bind(version)
        .bind(annals::uuid::Uuid::now_v7().hyphenated().to_string())
        .bind(name)
        .bind(payload)
        .bind(
            serde_json::to_string(&annals::Metadata::root(annals::uuid::Uuid::now_v7()))
                .expect("json"),
        )
        .execute(&mut other)
        .await
        .expect("insert");
    }
    let accounts = Repository::<Account, _>::new(store);
    let broken = |error: annals::RepositoryError| match error {
        annals::RepositoryError::BrokenStream {
            stream,
            previous,
            found,
            ..
        } => (stream, previous, found),
        other => panic!("expected a broken stream, got {other}"),
    };
    let error = accounts.load("g1").await.expect_err("a gap");
    assert_eq!(broken(error), ("account-g1".to_owned(), 1, 3));
    let error = accounts.history("g1").await.expect_err("a gap");
    assert_eq!(broken(error), ("account-g1".to_owned(), 1, 3));
}
