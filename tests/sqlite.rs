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

/// A store opened from a URL gets the same settings as one opened from a path: WAL (which
/// the file keeps), so readers never wait for a writer of another process.
#[tokio::test]
async fn a_store_connected_by_url_uses_wal_like_an_opened_one() {
    let dir = annals_tests::TempDir::new("annals-url");
    let path = dir.path().join("events.db");
    let url = format!("sqlite://{}", path.display());
    let store = annals::SqliteStore::connect(&url).await.expect("connect");
    store.close().await;
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut other)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
}

/// Set in a child process of `two_processes_share_one_file`: what it runs.
const WORKER: &str = "ANNALS_SQLITE_WORKER";
const PROCESSES: usize = 2;
const TASKS: usize = 8;
const COMMANDS: u64 = 50;

/// Two processes, eight tasks each, fifty commands per task, on one SQLite file: every
/// command succeeds, on disjoint aggregates and on one aggregate they all share. Writers
/// of the two processes wait for each other's lock; commands on one aggregate take turns
/// within a process and race only the other process, whose appends the retry absorbs.
#[test]
fn two_processes_share_one_file() {
    if let Ok(spec) = std::env::var(WORKER) {
        return worker(&spec);
    }
    for shared in [false, true] {
        let dir = annals_tests::TempDir::new("annals-two-processes");
        let path = dir.path().join("events.db");
        if shared {
            open_shared_account(&path);
        }
        let started = std::time::Instant::now();
        let children: Vec<_> = (0..PROCESSES)
            .map(|process| {
                std::process::Command::new(std::env::current_exe().expect("test binary"))
                    .args(["--exact", "two_processes_share_one_file", "--nocapture"])
                    .env(WORKER, format!("{}|{process}|{shared}", path.display()))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn a worker")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("worker");
            assert!(
                output.status.success(),
                "a worker failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let commands = PROCESSES * TASKS * usize::try_from(COMMANDS).expect("small");
        eprintln!(
            "{commands} commands from {PROCESSES} processes on {}: {:.0} commands/s",
            if shared {
                "one aggregate"
            } else {
                "disjoint aggregates"
            },
            commands as f64 / started.elapsed().as_secs_f64()
        );
        check(&path, shared);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open_shared_account(path: &std::path::Path) {
    use annals::prelude::*;
    use annals_tests::domain::{Account, Open};
    runtime().block_on(async {
        let store = annals::SqliteStore::open(path).await.expect("open");
        Repository::<Account, _>::new(store.clone())
            .execute("shared", Open("Ann".into()))
            .await
            .expect("open the shared account");
        store.close().await;
    });
}

/// One worker process: `TASKS` tasks of `COMMANDS` commands through one repository.
fn worker(spec: &str) {
    use annals::prelude::*;
    use annals_tests::domain::{Account, Deposit, Open};
    let mut parts = spec.split('|');
    let (path, process, shared) = (
        parts.next().expect("path").to_owned(),
        parts.next().expect("process").to_owned(),
        parts.next() == Some("true"),
    );
    runtime().block_on(async {
        let store = annals::SqliteStore::open(&path).await.expect("open");
        let accounts = Repository::<Account, _>::new(store.clone());
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let accounts = accounts.clone();
                let id = if shared {
                    "shared".to_owned()
                } else {
                    format!("p{process}-t{task}")
                };
                tokio::spawn(async move {
                    for i in 0..COMMANDS {
                        let result = if !shared && i == 0 {
                            accounts
                                .execute(&id, Open("Ann".into()))
                                .await
                                .map(|d| d.attempts)
                        } else {
                            accounts.execute(&id, Deposit(1)).await.map(|d| d.attempts)
                        };
                        match result {
                            // Disjoint aggregates never conflict, and a writer waits for
                            // the other process's lock instead of failing and retrying.
                            Ok(attempts) if !shared => {
                                assert_eq!(attempts, 1, "command {i} on {id} was retried");
                            }
                            Ok(_) => {}
                            Err(error) => panic!("command {i} on {id} failed: {error}"),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("every command succeeds");
        }
        store.close().await;
    });
}

/// Every command landed once: the balances and the versions, without gap or repeat.
fn check(path: &std::path::Path, shared: bool) {
    use annals::prelude::*;
    use annals_tests::domain::Account;
    runtime().block_on(async {
        let store = annals::SqliteStore::open(path).await.expect("open");
        let accounts = Repository::<Account, _>::new(store.clone());
        let per_task = COMMANDS - u64::from(!shared);
        let ids: Vec<String> = if shared {
            vec!["shared".to_owned()]
        } else {
            (0..PROCESSES)
                .flat_map(|p| (0..TASKS).map(move |t| format!("p{p}-t{t}")))
                .collect()
        };
        let deposits_each = if shared {
            per_task * u64::try_from(PROCESSES * TASKS).expect("small")
        } else {
            per_task
        };
        for id in ids {
            let account = accounts.load(&id).await.expect("load");
            assert_eq!(account.balance, deposits_each, "{id}");
            assert_eq!(account.version(), deposits_each + 1, "{id}");
        }
    });
}

/// `INSERT OR REPLACE` by another tool cannot rewrite a stored event: the replace would
/// delete the stored row without firing the delete trigger, so the insert itself is refused.
#[tokio::test]
async fn insert_or_replace_cannot_rewrite_a_stored_event() {
    use annals::prelude::*;

    let dir = annals_tests::TempDir::new("annals-replace");
    let path = dir.path().join("events.db");
    let store = annals::SqliteStore::open(&path).await.expect("open");
    let payload = serde_json::value::to_raw_value(&serde_json::json!({ "n": 1 })).expect("json");
    let event = NewEvent::new("Noted", 1, payload).expect("a valid event name");
    let id = event.event_id;
    store
        .append("notes-1", ExpectedVersion::NoStream, vec![event])
        .await
        .expect("append");
    let url = format!("sqlite://{}", path.display());
    let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let replaces = [
        (Some(1_i64), annals::uuid::Uuid::now_v7(), 7_i64), // the same position
        (None, id, 7),                                      // the same event id
        (None, annals::uuid::Uuid::now_v7(), 1),            // the same stream version
    ];
    for (position, event_id, version) in replaces {
        let replaced = sqlx::query(
            "INSERT OR REPLACE INTO annals_events (position, stream_id, stream_version, event_id, \
             event_name, event_version, payload, metadata, recorded_at) \
             VALUES (?, 'notes-1', ?, ?, 'Noted', 1, '{\"n\":666}', '{}', 0)",
        )
        .bind(position)
        .bind(version)
        .bind(event_id.hyphenated().to_string())
        .execute(&mut other)
        .await;
        let error = replaced
            .expect_err("a stored row is never replaced")
            .to_string();
        assert!(error.contains("append-only"), "{error}");
    }
    let stored = store.read_stream("notes-1", ..).await.expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload.get(), r#"{"n":1}"#);
}

/// A `Pinged` event.
fn ping() -> annals::NewEvent {
    annals::NewEvent::new(
        "Pinged",
        1,
        serde_json::value::to_raw_value(&1).expect("json"),
    )
    .expect("a valid event name")
}

/// A store on a new file, and a connection to the file as another tool would have.
async fn beside_another_tool(
    prefix: &str,
) -> (
    annals_tests::TempDir,
    annals::SqliteStore,
    sqlx::SqliteConnection,
) {
    let dir = annals_tests::TempDir::new(prefix);
    let path = dir.path().join("events.db");
    let store = annals::SqliteStore::open(&path).await.expect("open");
    let url = format!("sqlite://{}", path.display());
    let other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    (dir, store, other)
}

/// Writes a `Pinged` row around the store: `event_version`, `payload` and `metadata` are SQL
/// expressions, of any type SQLite takes.
async fn insert_raw(
    conn: &mut sqlx::SqliteConnection,
    stream: &str,
    version: u64,
    event_version: &str,
    payload: &str,
    metadata: &str,
) {
    sqlx::query(&format!(
        "INSERT INTO annals_events (stream_id, stream_version, event_id, event_name, \
         event_version, payload, metadata, recorded_at) \
         VALUES ('{stream}', {version}, '{}', 'Pinged', {event_version}, {payload}, {metadata}, 0)",
        annals::uuid::Uuid::now_v7()
    ))
    .execute(conn)
    .await
    .expect("insert");
}

/// A catch-up from the start: how many events it handed out, and how it ended.
async fn count_catch_up(
    store: &annals::SqliteStore,
) -> (usize, Result<annals::Checkpoint, annals::StoreError>) {
    use annals::EventStore;
    let mut seen = 0;
    let ended = store
        .catch_up(annals::Checkpoint::START, |_, _| {
            seen += 1;
            Ok::<_, annals::StoreError>(())
        })
        .await;
    (seen, ended)
}

/// A column of another type than the schema's (SQLite stores what it is given) is named
/// exactly by the lean reads, which otherwise read many rows at once.
#[tokio::test]
async fn a_column_of_another_type_is_named_by_the_lean_reads() {
    use annals::prelude::*;
    use annals::{StoreError, VersionRange};

    let (_dir, store, mut other) = beside_another_tool("annals-odd-column").await;
    store
        .append("odd-1", ExpectedVersion::NoStream, vec![ping(), ping()])
        .await
        .expect("append");
    insert_raw(&mut other, "odd-1", 3, "'one'", "'1'", "'{}'").await;
    // A payload too large to read with others, and not text.
    insert_raw(&mut other, "odd-2", 1, "1", "randomblob(100000)", "'{}'").await;
    // A number that is not an integer: never rounded into one.
    insert_raw(&mut other, "odd-3", 1, "1.5", "'1'", "'{}'").await;

    let named = |error: StoreError| match error {
        StoreError::Corrupt {
            stream,
            stream_version,
            checkpoint,
            reason,
            ..
        } => (
            stream,
            stream_version,
            checkpoint.map(|c| c.position),
            reason,
        ),
        other => panic!("expected a located error, got {other}"),
    };
    let (seen, caught_up) = count_catch_up(&store).await;
    let (stream, version, position, reason) = named(caught_up.expect_err("the odd row"));
    assert_eq!(
        (stream.as_str(), version, position, seen),
        ("odd-1", Some(3), Some(3), 2)
    );
    assert!(reason.contains("event version"), "{reason}");

    let mut versions = Vec::new();
    let folded = store
        .fold_stream("odd-1", VersionRange::new(..), |e| {
            versions.push(e.stream_version);
            Ok::<_, StoreError>(())
        })
        .await;
    let (stream, version, _, _) = named(folded.expect_err("the odd row"));
    assert_eq!(
        (stream.as_str(), version, versions),
        ("odd-1", Some(3), vec![1, 2])
    );
    let folded = store
        .fold_stream("odd-2", VersionRange::new(..), |_| Ok::<_, StoreError>(()))
        .await;
    let (stream, version, _, reason) = named(folded.expect_err("the large odd row"));
    assert_eq!((stream.as_str(), version), ("odd-2", Some(1)));
    assert!(reason.contains("payload"), "{reason}");
    let folded = store
        .fold_stream("odd-3", VersionRange::new(..), |_| Ok::<_, StoreError>(()))
        .await;
    let (stream, version, _, reason) = named(folded.expect_err("the fractional version"));
    assert_eq!((stream.as_str(), version), ("odd-3", Some(1)));
    assert!(reason.contains("event version"), "{reason}");
}

/// A row no code can read (written by another tool) holds back nothing before it: readers
/// of the global order get every event up to it, then an error naming its stream, version
/// and checkpoint. A subscription passes it only when its consumer says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_holds_back_nothing_before_it() {
    use annals::prelude::*;
    use annals::{Checkpoint, StoreError};

    let (_dir, store, mut other) = beside_another_tool("annals-unreadable").await;
    store
        .append(
            "good-1",
            ExpectedVersion::NoStream,
            vec![ping(), ping(), ping()],
        )
        .await
        .expect("append");
    // Metadata of another shape, then a payload that is not UTF-8.
    insert_raw(&mut other, "bad-1", 1, "1", "'{}'", "'[]'").await;
    insert_raw(&mut other, "bad-1", 2, "1", "CAST(X'FF' AS TEXT)", "'{}'").await;
    store
        .append("good-2", ExpectedVersion::NoStream, vec![ping(), ping()])
        .await
        .expect("append");

    // `read_all`: the page ends before the bad row; the next one is its error.
    let page = store
        .read_all(Checkpoint::START, 100)
        .await
        .expect("the events before it");
    assert_eq!(page.len(), 3);
    let after = page[2].checkpoint();
    let corrupt = |error: StoreError| match error {
        StoreError::Corrupt {
            stream,
            stream_version,
            checkpoint,
            ..
        } => (
            stream,
            stream_version,
            checkpoint.expect("a checkpoint to skip"),
        ),
        other => panic!("expected a located error, got {other}"),
    };
    let (stream, version, first_bad) =
        corrupt(store.read_all(after, 100).await.expect_err("the bad row"));
    assert_eq!((stream.as_str(), version), ("bad-1", Some(1)));
    assert_eq!(first_bad.position, page[2].position + 1);

    // `catch_up` hands out the events before the bad row, then its error.
    let (seen, caught_up) = count_catch_up(&store).await;
    // The lean read carries no metadata, so it stops at the payload that is not UTF-8.
    let (stream, version, _) = corrupt(caught_up.expect_err("the bad payload"));
    assert_eq!((stream.as_str(), version, seen), ("bad-1", Some(2), 4));

    // A subscription delivers the three, then the error, again at each poll, until its
    // consumer skips past each bad row; then the rest.
    let mut feed = annals::Subscription::start(
        store.clone(),
        Checkpoint::START,
        annals::SubscriptionOptions::default().poll_interval(std::time::Duration::from_millis(10)),
    );
    let mut streams = Vec::new();
    let mut unreadable = std::collections::BTreeSet::new();
    while streams.len() < 5 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
            .await
            .expect("the feed goes on")
            .expect("open")
        {
            Ok(event) => streams.push(event.stream_id),
            Err(error) => {
                let (stream, _, at) = corrupt(error);
                assert_eq!(stream, "bad-1");
                unreadable.insert(at);
                feed.skip_past(at);
            }
        }
    }
    assert_eq!(streams, ["good-1", "good-1", "good-1", "good-2", "good-2"]);
    assert_eq!(
        unreadable.len(),
        2,
        "each bad row reported, and passed on purpose"
    );
}

/// A SQL-table projection on SQLite: exactly once, rebuilt whole, stopped before a
/// failing handler's event.
#[tokio::test]
async fn sql_tables_follow_the_log() {
    let fixture = annals_tests::sqlite_file().await;
    let store = fixture.store.clone();
    let reader = store.clone();
    annals_tests::tables::tables_follow_the_log::<_, annals_tests::tables::SqliteTotals, _, _>(
        store,
        move || {
            let reader = reader.clone();
            async move {
                sqlx::query_as(
                    "SELECT account, owner, balance, events FROM account_totals ORDER BY account",
                )
                .fetch_all(reader.pool())
                .await
                .expect("rows")
            }
        },
    )
    .await;
}

/// A SQL handler's panic is a reported failure; a rebuild runs on a one-connection
/// (in-memory) database.
#[tokio::test]
async fn sql_handler_panics_are_reported() {
    let fixture = annals_tests::sqlite_memory().await;
    let store = fixture.store.clone();
    let reader = store.clone();
    let check = annals_tests::tables::sql_handler_panics_are_reported::<
        _,
        annals_tests::tables::SqliteTotals,
        _,
        _,
    >(store, move || {
        let reader = reader.clone();
        async move {
            sqlx::query_as(
                "SELECT account, owner, balance, events FROM account_totals ORDER BY account",
            )
            .fetch_all(reader.pool())
            .await
            .expect("rows")
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), check)
        .await
        .expect("no hang");
}

/// A SQL-table projection on SQLite that keeps dead letters keeps each stream's order,
/// and retries a stream's dead letters in one transaction after a fix.
#[tokio::test]
async fn sql_dead_letters_keep_each_stream_in_order() {
    let fixture = annals_tests::sqlite_file().await;
    let store = fixture.store.clone();
    let reader = store.clone();
    annals_tests::tables::sql_dead_letters_keep_each_stream_in_order::<
        _,
        annals_tests::tables::SqliteCareful,
        _,
        _,
    >(store, move || {
        let reader = reader.clone();
        async move {
            sqlx::query_as("SELECT account, amount FROM careful_deposits ORDER BY n")
                .fetch_all(reader.pool())
                .await
                .expect("rows")
        }
    })
    .await;
}
