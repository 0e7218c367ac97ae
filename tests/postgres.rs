//! PostgreSQL: the conformance suite, plus what only a real concurrent database can break.

annals_tests::conformance_suite!(conformance, annals_tests::postgres);

use std::collections::HashSet;
use std::time::Duration;

use annals::prelude::*;
use annals::{Checkpoint, PostgresStore, Subscription, SubscriptionOptions};
use sqlx::Connection;

fn numbered(n: u64) -> NewEvent {
    NewEvent::new(
        "Numbered",
        1,
        serde_json::value::to_raw_value(&n).expect("json"),
    )
    .expect("a valid event name")
}

async fn next_within(feed: &mut Subscription, wait: Duration) -> Option<RecordedEvent> {
    match tokio::time::timeout(wait, feed.next()).await {
        Ok(Some(event)) => Some(event.expect("subscription read")),
        Ok(None) => panic!("subscription ended"),
        Err(_) => None,
    }
}

/// 32 tasks x 100 commands on one stream: every command lands once, versions stay contiguous,
/// and each conflict is retried rather than lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers_on_one_stream() {
    let fixture = annals_tests::postgres().await;
    let attempts =
        annals_tests::conformance::hammer_one_stream(fixture.store.clone(), 32, 100, 0).await;
    eprintln!("3200 commands, {} conflicts retried", attempts - 3200);
}

/// Group commit on PostgreSQL: the conformance check of concurrent appends, through one
/// writer, and some of those appends shared a transaction. One writer's statements run
/// one at a time, so each append's events got consecutive positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_settles_each_append_on_its_own() {
    let fixture = annals_tests::postgres_with(|options| options.group_writers(1)).await;
    let events =
        annals_tests::conformance::concurrent_appends_settle_each_on_its_own(fixture.store.clone())
            .await;
    let mut positions = std::collections::HashMap::<&str, Vec<u64>>::new();
    for event in events.iter().filter(|e| e.stream_id.starts_with("g-")) {
        positions
            .entry(&event.stream_id)
            .or_default()
            .push(event.position);
    }
    for (stream, positions) in positions {
        assert!(
            positions.windows(2).all(|w| w[1] == w[0] + 1),
            "{stream}: {positions:?}"
        );
    }
    assert!(
        annals_tests::conformance::streams_share(&events, |e| e.transaction_id),
        "320 concurrent appends through one writer never shared a commit"
    );
}

/// Inserts one event in an open transaction, the way an append does, and returns its position.
async fn insert_uncommitted(
    conn: &mut sqlx::PgConnection,
    store: &PostgresStore,
    stream: &str,
) -> i64 {
    sqlx::query("BEGIN")
        .execute(&mut *conn)
        .await
        .expect("begin");
    let sql = format!(
        "INSERT INTO \"{}\".annals_events (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
         VALUES ($1, 1, $2, 'Numbered', 1, '0', $3::json) RETURNING position",
        store.schema()
    );
    let id = uuid::Uuid::now_v7();
    let metadata = serde_json::to_string(&annals::Metadata::root(id)).expect("json");
    sqlx::query_scalar(&sql)
        .bind(stream)
        .bind(id)
        .bind(metadata)
        .fetch_one(&mut *conn)
        .await
        .expect("insert")
}

/// While transaction A holds a lower position uncommitted, B commits a higher one: nobody
/// may see B before A's fate is known; then A comes first (or only B, if A rolls back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_commit_with_a_lower_position_is_not_skipped() {
    for commit_a in [true, false] {
        let fixture = annals_tests::postgres().await;
        let store = fixture.store.clone();
        let options = SubscriptionOptions::default().poll_interval(Duration::from_millis(20));
        let mut feed = Subscription::start(store.clone(), Checkpoint::START, options);

        let mut a = sqlx::PgConnection::connect(&annals_tests::database_url())
            .await
            .expect("connect");
        let position_a = insert_uncommitted(&mut a, &store, "late-a").await;
        let b = store
            .append("late-b", ExpectedVersion::NoStream, vec![numbered(2)])
            .await
            .expect("append b");
        assert!(
            b.first_position as i64 > position_a,
            "B took a higher position than A"
        );

        // Deterministic: B is committed, yet held back while A is open, by every reader.
        assert!(
            store
                .read_all(Checkpoint::START, 10)
                .await
                .expect("read")
                .is_empty()
        );
        let mut caught = 0;
        let caught_up = store
            .catch_up(Checkpoint::START, |_, _| {
                caught += 1;
                Ok::<_, annals::StoreError>(())
            })
            .await
            .expect("catch up");
        assert_eq!(
            (caught, caught_up),
            (0, Checkpoint::START),
            "catch-up saw B before A"
        );
        assert!(
            next_within(&mut feed, Duration::from_millis(300))
                .await
                .is_none(),
            "B delivered before A"
        );

        sqlx::query(if commit_a { "COMMIT" } else { "ROLLBACK" })
            .execute(&mut a)
            .await
            .expect("end A");
        let first = next_within(&mut feed, Duration::from_secs(30))
            .await
            .expect("an event after A ends");
        if commit_a {
            assert_eq!(
                (first.stream_id.as_str(), first.position as i64),
                ("late-a", position_a)
            );
            let second = next_within(&mut feed, Duration::from_secs(30))
                .await
                .expect("B");
            assert_eq!(second.stream_id, "late-b");
        } else {
            assert_eq!(first.stream_id, "late-b");
        }
        assert!(
            next_within(&mut feed, Duration::from_millis(200))
                .await
                .is_none(),
            "nothing else"
        );
    }
}

/// 8 writers on distinct streams and 2 subscribers, 20,000 events: each subscriber sees every
/// event once, and both see the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_two_subscribers() {
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 500;
    const BATCH: u64 = 5;
    const TOTAL: usize = (WRITERS * APPENDS * BATCH) as usize;
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    let subscribers: Vec<_> = (0..2)
        .map(|_| {
            let mut feed = store.subscribe(Checkpoint::START);
            tokio::spawn(async move {
                let mut seen = Vec::with_capacity(TOTAL);
                while seen.len() < TOTAL {
                    let event = next_within(&mut feed, Duration::from_secs(60))
                        .await
                        .expect("events keep coming");
                    seen.push((event.event_id, event.stream_id, event.stream_version));
                }
                assert!(
                    next_within(&mut feed, Duration::from_millis(200))
                        .await
                        .is_none(),
                    "no extra event"
                );
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..APPENDS {
                    let batch = (0..BATCH).map(|k| numbered(i * BATCH + k)).collect();
                    store
                        .append(
                            &format!("writer-{w}"),
                            ExpectedVersion::Exact(i * BATCH),
                            batch,
                        )
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut seen = Vec::new();
    for subscriber in subscribers {
        seen.push(subscriber.await.expect("subscriber"));
    }
    assert_eq!(seen[0], seen[1], "both subscribers see one order");
    let unique: HashSet<_> = seen[0].iter().map(|e| e.0).collect();
    assert_eq!(unique.len(), TOTAL, "every event exactly once");
    for w in 0..WRITERS {
        let stream = format!("writer-{w}");
        let versions: Vec<u64> = seen[0]
            .iter()
            .filter(|e| e.1 == stream)
            .map(|e| e.2)
            .collect();
        assert_eq!(
            versions,
            (1..=APPENDS * BATCH).collect::<Vec<_>>(),
            "{stream} in version order"
        );
    }
}

/// A connect failure names the URL, never the password, and says how to get a server.
#[tokio::test]
async fn connect_errors_name_the_url_without_the_password() {
    let url = "postgres://alice:hunter2@127.0.0.1:1/test";
    match PostgresStore::connect(url).await {
        Err(annals::OpenError::Connect { url, .. }) => {
            assert_eq!(url, "postgres://alice:***@127.0.0.1:1/test")
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    let message = PostgresStore::connect(url)
        .await
        .expect_err("nothing listens on port 1")
        .to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("127.0.0.1:1") && message.contains("start a server"),
        "{message}"
    );
    let bad_schema =
        annals::PostgresOptions::new(annals_tests::database_url()).schema("x; DROP TABLE y");
    assert!(matches!(
        PostgresStore::connect_with(bad_schema).await,
        Err(annals::OpenError::InvalidSchema { .. })
    ));
}

thread_local! {
    static STATEMENTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static CONNECTION_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static IN_COMMAND: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether a statement is the check a new connection makes of its cluster: part of making
/// a connection, like the handshake, not of the command that needed the connection.
struct IsConnectionCheck(bool);

impl tracing::field::Visit for IsConnectionCheck {
    fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0 |= format!("{value:?}").contains("pg_control_system()");
    }
    fn record_str(&mut self, _: &tracing::field::Field, value: &str) {
        self.0 |= value.contains("pg_control_system()");
    }
}

/// Counts the statements sqlx sends from inside a command (an `annals.execute` span), per
/// thread: each is one network round trip, as a command waits for every answer before
/// sending the next. Work in tasks of the store's own (waking other processes) is not on
/// a command's path and is not counted.
struct StatementCounter;

const COMMAND_SPAN: u64 = 7;

fn counted(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target() == "sqlx::query" || metadata.name() == "annals.execute"
}

impl tracing::Subscriber for StatementCounter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if counted(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        counted(metadata)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(COMMAND_SPAN)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "sqlx::query" && IN_COMMAND.with(std::cell::Cell::get) > 0 {
            let mut check = IsConnectionCheck(false);
            event.record(&mut check);
            let counter = if check.0 {
                &CONNECTION_CHECKS
            } else {
                &STATEMENTS
            };
            counter.with(|n| n.set(n.get() + 1));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {
        IN_COMMAND.with(|n| n.set(n.get() + 1));
    }
    fn exit(&self, _: &tracing::span::Id) {
        IN_COMMAND.with(|n| n.set(n.get() - 1));
    }
}

/// A command costs two round trips without a cache (read the stream, one-statement
/// append) and one with a warm cache (the append); a creating command on a new stream
/// costs one either way.
#[tokio::test(flavor = "current_thread")]
async fn round_trips_per_command() {
    use annals_tests::domain::{Account, Deposit, Open};

    // Global, so every callsite sees it; counted per thread, and the current-thread
    // runtime runs this test's queries on this thread only.
    let _ = tracing::subscriber::set_global_default(StatementCounter);
    let fixture = annals_tests::postgres().await;
    let plain = Repository::<Account, _>::new(fixture.store.clone());
    let cached = Repository::<Account, _>::new(fixture.store.clone()).with_cache(10);
    let mut per_command = Vec::new();
    for (repo, id) in [(&plain, "rt-plain"), (&cached, "rt-cached")] {
        let before = STATEMENTS.with(std::cell::Cell::get);
        repo.execute(id, Open("Ann".into())).await.expect("open");
        per_command.push((STATEMENTS.with(std::cell::Cell::get) - before) as f64);
    }
    for (repo, id) in [(&plain, "rt-plain"), (&cached, "rt-cached")] {
        let before = STATEMENTS.with(std::cell::Cell::get);
        for amount in 1..=10 {
            repo.execute(id, Deposit(amount)).await.expect("deposit");
        }
        per_command.push((STATEMENTS.with(std::cell::Cell::get) - before) as f64 / 10.0);
    }
    assert_eq!(
        per_command,
        [1.0, 1.0, 2.0, 1.0],
        "statements per command: open plain, open cached, deposit plain, deposit cached"
    );
    // The commands opened connections, and each new one checked its cluster once.
    assert!(CONNECTION_CHECKS.with(std::cell::Cell::get) >= 1);
    // A lost bet: the one-event append inserts nothing, the append alone reports the
    // conflict, having looked for the event ids of a retried append, then the read, and
    // the loaded state rejects.
    let before = STATEMENTS.with(std::cell::Cell::get);
    let lost = plain.execute("rt-plain", Open("Bob".into())).await;
    assert!(
        matches!(
            lost,
            Err(ExecuteError::Rejected(
                annals_tests::domain::AccountError::AlreadyOpen
            ))
        ),
        "{lost:?}"
    );
    assert_eq!(
        STATEMENTS.with(std::cell::Cell::get) - before,
        4,
        "a lost bet"
    );
}

/// annals plans its own statements to walk their keys; the pool it hands out for your
/// queries keeps the server's planner settings.
#[tokio::test]
async fn your_pool_keeps_the_server_planner_settings() {
    let fixture = annals_tests::postgres().await;
    let store = &fixture.store;
    store
        .append("planned-1", ExpectedVersion::NoStream, vec![numbered(1)])
        .await
        .expect("append");
    let mut plain = sqlx::PgConnection::connect(&annals_tests::database_url())
        .await
        .expect("connect");
    for setting in ["enable_sort", "enable_seqscan", "enable_bitmapscan", "jit"] {
        let show = format!("SHOW {setting}");
        let value: String = sqlx::query_scalar(&show)
            .fetch_one(store.pool())
            .await
            .expect("SHOW");
        let server: String = sqlx::query_scalar(&show)
            .fetch_one(&mut plain)
            .await
            .expect("SHOW");
        assert_eq!(value, server, "{setting} on the pool handed out");
    }
}

/// A catch-up longer than one page (65,536 events): every event once, in global order,
/// from the start and from a checkpoint just before the page boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_crosses_pages() {
    const EVENTS: u64 = 65_536 + 64;
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    store
        .append(
            "long",
            ExpectedVersion::NoStream,
            (1..=EVENTS).map(numbered).collect(),
        )
        .await
        .expect("append");
    // Past the read horizon, which other tests' open transactions hold back.
    let stored = annals_tests::conformance::all_events(&store).await;
    let long: Vec<_> = stored.iter().filter(|e| e.stream_id == "long").collect();
    assert_eq!(long.len() as u64, EVENTS);

    let from = |index: usize| long[index].checkpoint();
    for start in [Checkpoint::START, from(65_500)] {
        let (mut seen, mut last) = (Vec::new(), start);
        let end = store
            .catch_up(start, |checkpoint, e| {
                assert!(checkpoint > last, "{checkpoint} does not follow {last}");
                last = checkpoint;
                // The suite's read barrier has a stream of its own.
                if e.stream_id == "long" {
                    seen.push((checkpoint, e.stream_version));
                }
                Ok::<_, annals::StoreError>(())
            })
            .await
            .expect("catch up");
        let expected: Vec<_> = long
            .iter()
            .filter(|e| e.checkpoint() > start)
            .map(|e| (e.checkpoint(), e.stream_version))
            .collect();
        assert_eq!(seen.len(), expected.len(), "catch-up from {start}");
        assert!(
            seen == expected,
            "catch-up from {start} differs from read_all"
        );
        assert_eq!(end, last);
    }
}

/// An event version the `int4` column cannot hold is a typed error naming the stream and
/// the value; nothing is written, and nothing is stored as another number.
#[tokio::test]
async fn an_event_version_beyond_the_column_is_an_error_not_a_clamp() {
    let fixture = annals_tests::postgres().await;
    let store = &fixture.store;
    let payload = annals::serde_json::value::to_raw_value(&1).expect("json");
    for expected in [ExpectedVersion::Any, ExpectedVersion::NoStream] {
        let event = NewEvent::new("Huge", u32::MAX, payload.clone()).expect("a valid event name");
        match store.append("huge-1", expected, vec![event]).await {
            Err(annals::StoreError::OutOfRange {
                stream,
                field,
                value,
                max,
            }) => {
                assert_eq!(stream, "huge-1");
                assert_eq!(
                    (field, value, max),
                    ("event version", u64::from(u32::MAX), 2_147_483_647)
                );
            }
            other => panic!("expected an out-of-range error, got {other:?}"),
        }
    }
    assert_eq!(store.stream_version("huge-1").await.expect("version"), 0);
}

/// A schema a newer release migrated is refused with a typed error naming both versions.
#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused() {
    let fixture = annals_tests::postgres().await;
    let schema = fixture.store.schema().to_owned();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".annals_schema (version, description) VALUES (99, 'future')"
    ))
    .execute(fixture.store.pool())
    .await
    .expect("record a future migration");
    let options = annals::PostgresOptions::new(annals_tests::database_url()).schema(schema);
    match PostgresStore::connect_with(options).await {
        Err(annals::OpenError::SchemaTooNew {
            backend,
            found,
            known,
        }) => {
            assert_eq!((backend, found), ("PostgreSQL", 99));
            assert!((5..99).contains(&known), "{known}");
        }
        other => panic!("expected the schema to be refused, got {other:?}"),
    }
}

/// A stream that another tool wrote with a gap (versions 1 and 3) does not load as version
/// 3: the load says which versions break the run.
#[tokio::test]
async fn a_stream_with_a_version_gap_does_not_load() {
    use annals_tests::domain::Account;

    let fixture = annals_tests::postgres().await;
    let schema = fixture.store.schema().to_owned();
    for (version, name, payload) in [
        (1_i64, "Opened", r#"{"owner":"ann"}"#),
        (3, "Deposited", r#"{"amount":5}"#),
    ] {
        sqlx::query(&format!(
            "INSERT INTO \"{schema}\".annals_events (stream_id, stream_version, event_id, \
             event_name, event_version, payload, metadata) \
             VALUES ('account-g1', $1, $2, $3, 1, $4::json, '{{}}'::json)"
        ))
        .bind(version)
        .bind(annals::uuid::Uuid::now_v7())
        .bind(name)
        .bind(payload)
        .execute(fixture.store.pool())
        .await
        .expect("insert");
    }
    let accounts = Repository::<Account, _>::new(fixture.store.clone());
    match accounts.load("g1").await {
        Err(annals::RepositoryError::BrokenStream {
            stream,
            previous,
            found,
            ..
        }) => assert_eq!((stream.as_str(), previous, found), ("account-g1", 1, 3)),
        other => panic!("expected a broken stream, got {other:?}"),
    }
}

/// A schema restored into another cluster whose transaction ids are behind the stored
/// events' does not open: events appended there would sort before the stored ones, and
/// subscribers past those would never see them. Advanced as the error says, the cluster
/// opens it, and a new event sorts after every stored one.
/// Commits transactions on the shared server until its transaction ids are past `at_least`:
/// on a fresh machine they start where a throwaway cluster's do, and a restore from it
/// would not be behind.
async fn advance_transaction_ids(pool: &sqlx::PgPool, at_least: i64) {
    let (next,): (i64,) =
        sqlx::query_as("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await
            .expect("the server's next transaction id");
    if next >= at_least {
        return;
    }
    // One transaction id per COMMIT. A DO block may commit only when it is a statement of
    // its own in the simple protocol; without a flush per commit it takes well under a second.
    let mut connection = pool.acquire().await.expect("a connection");
    sqlx::raw_sql("SET synchronous_commit = off")
        .execute(&mut *connection)
        .await
        .expect("asynchronous commits");
    sqlx::raw_sql(&format!(
        "DO $$ BEGIN FOR i IN 1..{} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$",
        at_least - next
    ))
    .execute(&mut *connection)
    .await
    .expect("advance the transaction ids");
    // The setting is the session's: this connection goes back to the pool without it.
    sqlx::raw_sql("RESET synchronous_commit")
        .execute(&mut *connection)
        .await
        .expect("reset");
}

#[tokio::test]
async fn a_schema_restored_into_a_cluster_behind_it_opens_only_once_advanced() {
    let fixture = annals_tests::postgres().await;
    // A new cluster starts near 750 and its restore takes a few dozen more.
    advance_transaction_ids(fixture.store.pool(), 20_000).await;
    let schema = fixture.store.schema().to_owned();
    fixture
        .store
        .append(
            "restored-1",
            ExpectedVersion::NoStream,
            (1..=3).map(numbered).collect(),
        )
        .await
        .expect("append");
    let stored = fixture
        .store
        .read_stream("restored-1", ..)
        .await
        .expect("read");
    let last = stored.last().expect("three events").checkpoint();
    let (home,): (i64,) = sqlx::query_as("SELECT system_identifier FROM pg_control_system()")
        .fetch_one(fixture.store.pool())
        .await
        .expect("system identifier");

    let cluster = annals_tests::Cluster::start();
    let dump = cluster.dir().join("schema.sql");
    let dump = dump.to_string_lossy();
    let url = annals_tests::database_url();
    cluster.client_tool(
        "pg_dump",
        &["-d", &url, "-n", &schema, "--no-owner", "-f", &dump],
    );
    cluster.client_tool(
        "psql",
        &[
            "-d",
            &cluster.url(),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-f",
            &dump,
        ],
    );
    let options = annals::PostgresOptions::new(cluster.url()).schema(schema.clone());

    let refused = PostgresStore::connect_with(options.clone()).await;
    let message = refused.as_ref().err().map(ToString::to_string);
    let advance = match refused {
        Err(annals::OpenError::TransactionIdsBehind {
            schema: named,
            stored,
            next,
            cluster: id,
            recorded,
            advance,
        }) => {
            assert_eq!(named, schema);
            assert_eq!(stored, last.transaction_id);
            assert!(next <= stored, "next {next}, stored {stored}");
            assert_eq!(recorded, Some(home as u64));
            assert_ne!(id, home as u64);
            assert!(advance > stored && advance % 0x10_0000 == 0, "{advance}");
            advance
        }
        Err(other) => panic!("expected the restored schema to be refused, got {other}"),
        Ok(_) => panic!("a schema behind nothing: the restored schema opened"),
    };

    let (epoch, xid) = (
        (advance >> 32).to_string(),
        (advance & 0xffff_ffff).to_string(),
    );
    let message = message.unwrap_or_default();
    assert!(
        message.contains(&format!("pg_resetwal -e {epoch} -x {xid} <data directory>")),
        "{message}"
    );
    cluster.stop();
    cluster.server_tool(
        "pg_resetwal",
        &["-e", &epoch, "-x", &xid, "-D"],
        &cluster.data(),
    );
    cluster.start_again();
    let store = PostgresStore::connect_with(options)
        .await
        .expect("the advanced cluster opens the schema");
    store
        .append("restored-1", ExpectedVersion::Exact(3), vec![numbered(4)])
        .await
        .expect("append after the restore");
    let mut after = Vec::new();
    store
        .catch_up(last, |checkpoint, event| {
            after.push((checkpoint, event.stream_version));
            Ok::<_, annals::StoreError>(())
        })
        .await
        .expect("catch up");
    assert_eq!(after.len(), 1, "the new event, after every stored one");
    assert!(after[0].0 > last && after[0].0.transaction_id >= advance);
    assert_eq!(after[0].1, 4);
    // From the start, every event: the restored ones, then the new one, each once, in order.
    let mut all = Vec::new();
    store
        .catch_up(Checkpoint::START, |checkpoint, event| {
            all.push((checkpoint, event.stream_version));
            Ok::<_, annals::StoreError>(())
        })
        .await
        .expect("catch up from the start");
    assert_eq!(
        all.iter().map(|(_, version)| *version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(all.windows(2).all(|pair| pair[0].0 < pair[1].0));
    drop(store);
}

/// A store already open checks every connection it makes: when the schema's stored
/// transaction ids get ahead of the cluster's (rows copied in from another cluster, or the
/// address now leading to a restored copy), its next new connection refuses, and no append
/// goes through.
#[tokio::test]
async fn an_open_store_refuses_once_a_new_connection_finds_the_cluster_behind() {
    let schema = format!("annals_t_{}", annals::uuid::Uuid::now_v7().simple());
    let _guard = annals_tests::SchemaGuard::new(schema.clone());
    // A name of its own, so that the test ends only this store's connections.
    let application = format!("annals_moved_{}", annals::uuid::Uuid::now_v7().simple());
    let base = annals_tests::database_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}application_name={application}");
    let options = annals::PostgresOptions::new(url)
        .schema(schema.clone())
        .max_connections(2);
    let store = PostgresStore::connect_with(options.clone())
        .await
        .expect("open");
    store
        .append("moved-1", ExpectedVersion::NoStream, vec![numbered(1)])
        .await
        .expect("append");

    // A row from a cluster far ahead, as a copy from elsewhere would bring.
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".annals_events (transaction_id, stream_id, stream_version, \
         event_id, event_name, event_version, payload, metadata) VALUES \
         ((pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000000)::text::xid8, \
          'moved-2', 1, $1, 'Numbered', 1, '1'::json, '{{}}'::json)"
    ))
    .bind(annals::uuid::Uuid::now_v7())
    .execute(store.pool())
    .await
    .expect("insert");
    match PostgresStore::connect_with(options).await {
        Err(annals::OpenError::TransactionIdsBehind { stored, next, .. }) => {
            assert!(stored > next, "stored {stored}, next {next}")
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a schema ahead of its cluster opened"),
    }

    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&application)
    .execute(&mut admin)
    .await
    .expect("end the store's connections");
    // The first append may meet a connection that just ended; a new one refuses.
    let mut refused = None;
    for _ in 0..5 {
        match store
            .append("moved-1", ExpectedVersion::Exact(1), vec![numbered(2)])
            .await
        {
            Err(annals::StoreError::Open(annals::OpenError::TransactionIdsBehind {
                schema: named,
                ..
            })) => {
                refused = Some(named);
                break;
            }
            Err(_) => continue,
            Ok(done) => panic!("appended to a schema ahead of its cluster: {done:?}"),
        }
    }
    assert_eq!(refused.as_deref(), Some(schema.as_str()));
    let (count,): (i64,) = sqlx::query_as(&format!(
        "SELECT count(*) FROM \"{schema}\".annals_events WHERE stream_id = 'moved-1'"
    ))
    .fetch_one(&mut admin)
    .await
    .expect("count");
    assert_eq!(count, 1, "nothing appended after the refusal");
}

/// A SQL-table projection on PostgreSQL: exactly once, rebuilt whole, stopped before a
/// failing handler's event.
#[tokio::test]
async fn sql_tables_follow_the_log() {
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    // The table lives in the connection's default schema: start from an empty one.
    sqlx::query("DROP TABLE IF EXISTS annals_test_account_totals")
        .execute(store.pool())
        .await
        .expect("drop");
    let reader = store.clone();
    annals_tests::tables::tables_follow_the_log::<_, annals_tests::tables::PostgresTotals, _, _>(
        store,
        move || {
            let reader = reader.clone();
            async move {
                sqlx::query_as(
                    "SELECT account, owner, balance, events FROM annals_test_account_totals \
                     ORDER BY account",
                )
                .fetch_all(reader.pool())
                .await
                .expect("rows")
            }
        },
    )
    .await;
}

/// A transaction that stays open anywhere in the cluster holds back every reader: the
/// status names its server process and the events it keeps waiting, and a projection
/// catches up once it ends.
#[tokio::test]
async fn the_status_names_the_transaction_holding_the_readers_back() {
    use annals::projection::{Runner, status_of};
    use annals_tests::views::Balance;

    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    let mut holder = sqlx::PgConnection::connect(&annals_tests::database_url())
        .await
        .expect("connect");
    let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    sqlx::query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut holder)
        .await
        .expect("take a transaction id");
    let done = store
        .append(
            "account-held",
            ExpectedVersion::NoStream,
            vec![
                NewEvent::from_event(&annals_tests::domain::Opened {
                    owner: "ann".into(),
                })
                .expect("event"),
            ],
        )
        .await
        .expect("append");
    // Other tests' transactions may be older for a moment: ours stays.
    let mut named = None;
    for _ in 0..200 {
        let status = status_of::<Balance, _>(&store).await.expect("status");
        if let Some(horizon) = status.horizon.filter(|h| h.pid == Some(pid)) {
            named = Some(horizon);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let horizon = named.expect("the holding transaction named");
    assert!(horizon.events_waiting >= 1);
    let runner = Runner::new(store.clone()).with::<Balance>();
    runner.catch_up().await.expect("catch up");
    assert_eq!(
        status_of::<Balance, _>(&store)
            .await
            .expect("status")
            .checkpoint,
        annals::Checkpoint::START,
        "the event waits behind the open transaction"
    );
    sqlx::query("COMMIT")
        .execute(&mut holder)
        .await
        .expect("commit");
    runner
        .catch_up_to(done.last_checkpoint(), Duration::from_secs(10))
        .await
        .expect("caught up once it ended");
}

/// A runner whose database connections are terminated under it, several times, while
/// commands keep arriving, reconnects and goes on: every event applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_survives_its_connections_being_terminated() {
    use annals::projection::{Documents, Runner, RunnerOptions};
    use annals_tests::domain::{Account, Deposit, Open};
    use annals_tests::views::Balance;

    // A name of its own, so that the test ends only this store's connections.
    let application = format!("annals_cut_{}", annals::uuid::Uuid::now_v7().simple());
    let base = annals_tests::database_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}application_name={application}");
    let schema = format!("annals_t_{}", annals::uuid::Uuid::now_v7().simple());
    let _guard = annals_tests::SchemaGuard::new(schema.clone());
    let options = annals::PostgresOptions::new(url)
        .schema(schema)
        .max_connections(4);
    let store = PostgresStore::connect_with(options).await.expect("open");
    let accounts = Repository::<Account, _>::new(store.clone());
    for n in 0..4 {
        accounts
            .execute(&format!("c{n}"), Open("ann".into()))
            .await
            .expect("open");
    }
    let running = Runner::new(store.clone())
        .with::<Balance>()
        .options(
            RunnerOptions::default()
                .batch_size(5)
                .retry_interval(Duration::from_millis(10)),
        )
        .start();
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
    let mut last = None;
    let mut terminated = 0;
    for round in 0..10 {
        for n in 0..4 {
            // An append may meet a connection that was just terminated: it fails whole,
            // writes nothing, and is sent again.
            loop {
                match accounts.execute(&format!("c{n}"), Deposit(1)).await {
                    Ok(done) => {
                        last = done.last_checkpoint;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
        let (ended,): (i64,) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
        )
        .bind(&application)
        .fetch_one(&mut admin)
        .await
        .expect("terminate the store's connections");
        terminated += ended;
        tokio::time::sleep(Duration::from_millis(3 * round)).await;
    }
    assert!(
        terminated >= 10,
        "connections were terminated: {terminated}"
    );
    running
        .wait_for(last, Duration::from_secs(30))
        .await
        .expect("the runner reconnected and caught up");
    running.shutdown().await.expect("a clean stop");
    // A pooled connection the last termination ended fails its next use once, as any
    // read on a connection the server ended does: read again.
    let balances = Documents::<Balance, _>::new(store.clone());
    for n in 0..4 {
        let stream = format!("account-c{n}");
        let mut found = None;
        for _ in 0..5 {
            if let (Ok(events), Ok(Some(balance))) = (
                store.stream_version(&stream).await,
                balances.get(stream.as_str()).await,
            ) {
                found = Some((events, balance));
                break;
            }
        }
        let (events, balance) = found.expect("read after the terminations");
        assert_eq!(
            u64::from(balance.applied),
            events,
            "{stream}: each event once"
        );
        assert_eq!(balance.balance, 10, "{stream}");
    }
}

/// A SQL-table projection on PostgreSQL that keeps dead letters keeps each stream's
/// order, and retries a stream's dead letters in one transaction after a fix.
#[tokio::test]
async fn sql_dead_letters_keep_each_stream_in_order() {
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    // The table lives in the connection's default schema: start from an empty one.
    sqlx::query("DROP TABLE IF EXISTS annals_test_careful_deposits")
        .execute(store.pool())
        .await
        .expect("drop");
    let reader = store.clone();
    annals_tests::tables::sql_dead_letters_keep_each_stream_in_order::<
        _,
        annals_tests::tables::PostgresCareful,
        _,
        _,
    >(store, move || {
        let reader = reader.clone();
        async move {
            sqlx::query_as("SELECT account, amount FROM annals_test_careful_deposits ORDER BY n")
                .fetch_all(reader.pool())
                .await
                .expect("rows")
        }
    })
    .await;
}

/// Rows read from the schema's `annals_documents` so far, through its index or not,
/// once every connection named `app` has closed and reported its statistics.
async fn document_rows_read(conn: &mut sqlx::PgConnection, schema: &str, app: &str) -> i64 {
    let mut last = -1;
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(app)
                .fetch_one(&mut *conn)
                .await
                .expect("activity");
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *conn)
            .await
            .expect("clear");
        let read: i64 = sqlx::query_scalar(
            "SELECT (COALESCE((SELECT sum(idx_tup_read) FROM pg_stat_user_indexes \
               WHERE schemaname = $1 AND relname = 'annals_documents'), 0) \
             + COALESCE((SELECT seq_tup_read FROM pg_stat_user_tables \
               WHERE schemaname = $1 AND relname = 'annals_documents'), 0))::int8",
        )
        .bind(schema)
        .fetch_one(&mut *conn)
        .await
        .expect("statistics");
        if open == 0 && read == last {
            return read;
        }
        last = read;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An inline append reads the documents it changes, not its projection's: with 1,000
/// documents in each of two projections and no statistics on the table (as before
/// autovacuum's first analyze), the statements' cached plans still reach each document
/// by its key, to update it or to delete it. When they scanned, 30 appends that only
/// updated read 90,002 rows; these 30, once only their deletes still scanned, 29,684.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_append_reads_only_its_documents() {
    use annals::projection::ProjectionStore;
    use annals_tests::domain::{Account, Deposit, Open};
    use annals_tests::views::{Balance, Fragile};
    let fixture = annals_tests::postgres().await;
    let schema = fixture.store.schema().to_owned();
    let app = format!("annals-{schema}");
    let mut conn = sqlx::PgConnection::connect(&annals_tests::database_url())
        .await
        .expect("connect");
    sqlx::query(&format!(
        "ALTER TABLE \"{schema}\".annals_documents SET (autovacuum_enabled = false)"
    ))
    .execute(&mut conn)
    .await
    .expect("no analyze");
    // Stores of their own, dropped (their connections closed) before each count. One
    // connection each, so that the statements pass the five runs after which PostgreSQL
    // may cache a generic plan.
    let open = || async {
        let url = annals_tests::database_url();
        let join = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{join}application_name={app}");
        let options = annals::PostgresOptions::new(url)
            .schema(schema.clone())
            .max_connections(1);
        PostgresStore::connect_with(options)
            .await
            .expect("open")
            .inline::<Balance>()
            .await
            .expect("inline")
            .inline::<Fragile>()
            .await
            .expect("inline")
    };
    let accounts = Repository::<Account, _>::new(open().await);
    for n in 0..1000 {
        let id = format!("many-{n}");
        accounts
            .execute(&id, Open("ann".into()))
            .await
            .expect("open");
        accounts.execute(&id, Deposit(1)).await.expect("deposit");
    }
    drop(accounts);
    let before = document_rows_read(&mut conn, &schema, &app).await;
    assert!(
        before <= 2000 * 8,
        "2,000 inline appends creating or changing a document of each projection read \
         {before} document rows"
    );

    // Each deposit of 0 changes a balance and deletes a fragile document.
    let accounts = Repository::<Account, _>::new(open().await);
    for n in 0..30 {
        let id = format!("many-{}", n * 7);
        accounts.execute(&id, Deposit(0)).await.expect("deposit");
    }
    drop(accounts);
    let read = document_rows_read(&mut conn, &schema, &app).await - before;
    assert!(
        read <= 30 * 8,
        "30 inline appends read {read} document rows: each scanned its projections"
    );
    let (fragile,): (i64,) = sqlx::query_as(&format!(
        "SELECT count(*) FROM \"{schema}\".annals_documents WHERE name = 'fragile'"
    ))
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(fragile, 970, "each deposit of 0 deleted its document");
    let body: String = sqlx::query_scalar(&format!(
        "SELECT body::text FROM \"{schema}\".annals_documents \
         WHERE name = 'balances' AND key = 'account-many-7'"
    ))
    .fetch_one(&mut conn)
    .await
    .expect("the document");
    let balance: Balance = serde_json::from_str(&body).expect("a balance");
    assert_eq!((balance.balance, balance.applied), (1, 3));
}
