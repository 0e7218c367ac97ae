//! Crash safety of the read side, shown with real processes: a runner in a child process
//! is killed (SIGKILL) at random moments, twenty times, while commands keep arriving; after
//! every kill the next runner goes on from the stored checkpoint, and in the end every
//! account's document has applied each of its events exactly once. On a SQLite file and on
//! PostgreSQL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use annals::prelude::*;
use annals::projection::{Documents, ProjectionStore, Runner, RunnerOptions};
use annals_tests::domain::{Account, Deposit, Open};
use annals_tests::views::Balance;

/// The environment variable that makes this binary a runner child: `sqlite|PATH` or
/// `postgres|SCHEMA`.
const CHILD: &str = "ANNALS_CRASH_RUNNER";
/// Runners killed per backend.
const KILLS: usize = 20;
/// Accounts the commands go to.
const ACCOUNTS: usize = 16;
/// How often a runner without the lease asks for it.
const TAKEOVER: Duration = Duration::from_millis(300);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A runner child: small batches, so a kill lands inside one more often than not, and
/// then nothing but waiting to be killed.
fn child(spec: &str) {
    let (backend, place) = spec.split_once('|').expect("backend|place");
    runtime().block_on(async {
        match backend {
            "sqlite" => {
                run_until_killed(annals::SqliteStore::open(place).await.expect("open")).await
            }
            "leased" => {
                // `SCHEMA|APPLICATION`: the application name tells the runners apart.
                let (schema, application) = place.split_once('|').expect("schema|application");
                let base = annals_tests::database_url();
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}application_name={application}");
                let options = annals::PostgresOptions::new(url)
                    .schema(schema)
                    .max_connections(4);
                let store = annals::PostgresStore::connect_with(options)
                    .await
                    .expect("connect");
                run_until_killed(store).await
            }
            _ => {
                let options = annals::PostgresOptions::new(annals_tests::database_url())
                    .schema(place)
                    .max_connections(4);
                let store = annals::PostgresStore::connect_with(options)
                    .await
                    .expect("connect");
                run_until_killed(store).await
            }
        }
    });
}

async fn run_until_killed<S: ProjectionStore>(store: S) {
    let options = RunnerOptions::default()
        .batch_size(7)
        .poll_interval(Duration::from_millis(5))
        .takeover_interval(TAKEOVER);
    let _running = Runner::new(store)
        .with::<Balance>()
        .options(options)
        .start();
    std::future::pending::<()>().await;
}

fn spawn(test: &str, spec: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a runner")
}

/// A pseudo-random delay from 5 to 80 ms, seeded by the clock.
fn random_delay(seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(5 + *seed % 76)
}

/// Commands keep arriving while runner children are killed; then one runner here catches
/// up, and every account's document is checked against its stream.
async fn killed_runners_apply_each_event_once<S: ProjectionStore>(
    store: S,
    test: &str,
    spec: &str,
) -> (usize, u64) {
    let accounts = Repository::<Account, _>::new(store.clone());
    for n in 0..ACCOUNTS {
        accounts
            .execute(&format!("k{n}"), Open("ann".into()))
            .await
            .expect("open");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (accounts, stop) = (accounts.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut n, mut last) = (0usize, None);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let done = accounts
                    .execute(&format!("k{}", n % ACCOUNTS), Deposit(1))
                    .await
                    .expect("deposit");
                last = done.last_checkpoint;
                n += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (n, last)
        })
    };
    let mut seed = u64::from(Instant::now().elapsed().subsec_nanos())
        | 1 ^ u64::from(std::process::id()) << 17;
    for _ in 0..KILLS {
        let mut runner = spawn(test, spec);
        tokio::time::sleep(Duration::from_millis(150) + random_delay(&mut seed)).await;
        runner.kill().expect("SIGKILL");
        runner.wait().expect("reaped");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (deposits, last) = writer.await.expect("no panic");
    let last = last.expect("deposits were made");
    let (_, reached) = store
        .open_projection("balances", 1)
        .await
        .expect("projection");
    assert!(
        reached > annals::Checkpoint::START,
        "the killed runners committed batches"
    );
    Runner::new(store.clone())
        .with::<Balance>()
        .catch_up_to(last, Duration::from_secs(30))
        .await
        .expect("caught up after the kills");
    let balances = Documents::<Balance, _>::new(store.clone());
    let mut applied = 0;
    for n in 0..ACCOUNTS {
        let stream = format!("account-k{n}");
        let events = store.stream_version(&stream).await.expect("version");
        let balance = balances
            .get(stream.as_str())
            .await
            .expect("get")
            .expect("a document");
        // Each event applied once: as many as the stream holds, and the deposits summed.
        assert_eq!(u64::from(balance.applied), events, "{stream}");
        assert_eq!(balance.balance, events - 1, "{stream}");
        applied += events;
    }
    assert_eq!(applied, (deposits + ACCOUNTS) as u64);
    (deposits, applied)
}

#[test]
fn sqlite_runners_killed_mid_batch() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let dir = annals_tests::TempDir::new("annals-crash");
    let path = dir.path().join("events.db");
    let spec = format!("sqlite|{}", path.display());
    let (deposits, applied) = runtime().block_on(async {
        let store = annals::SqliteStore::open(&path).await.expect("open");
        killed_runners_apply_each_event_once(store, "sqlite_runners_killed_mid_batch", &spec).await
    });
    eprintln!(
        "SQLite: {KILLS} runners killed, {deposits} deposits arrived meanwhile, {applied} events applied once each"
    );
}

#[test]
fn postgres_runners_killed_mid_batch() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let (deposits, applied) = runtime().block_on(async {
        let fixture = annals_tests::postgres().await;
        let spec = format!("postgres|{}", fixture.store.schema());
        let done = killed_runners_apply_each_event_once(
            fixture.store.clone(),
            "postgres_runners_killed_mid_batch",
            &spec,
        )
        .await;
        drop(fixture);
        done
    });
    eprintln!(
        "PostgreSQL: {KILLS} runners killed, {deposits} deposits arrived meanwhile, {applied} events applied once each"
    );
}

/// The application whose connection holds an advisory lock, among those named `prefix...`.
async fn lease_holder(admin: &mut sqlx::PgConnection, prefix: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1 LIMIT 1",
    )
    .bind(format!("{prefix}%"))
    .fetch_optional(admin)
    .await
    .expect("pg_locks")
}

/// Two runner processes on one PostgreSQL projection: one holds the lease and applies it,
/// the other waits; the owner is killed, the other takes over within a few takeover
/// intervals, and every event is applied once.
#[test]
fn postgres_runner_takes_over_from_a_killed_owner() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let test = "postgres_runner_takes_over_from_a_killed_owner";
    let takeover = runtime().block_on(async {
        use sqlx::Connection as _;
        let fixture = annals_tests::postgres().await;
        let store = fixture.store.clone();
        let schema = store.schema().to_owned();
        let prefix = format!("annals_lease_{}", annals::uuid::Uuid::now_v7().simple());
        let (owner_a, owner_b) = (format!("{prefix}_a"), format!("{prefix}_b"));
        let mut admin = sqlx::PgConnection::connect(&annals_tests::database_url())
            .await
            .expect("connect");
        let accounts = Repository::<Account, _>::new(store.clone());
        for n in 0..ACCOUNTS {
            accounts
                .execute(&format!("k{n}"), Open("ann".into()))
                .await
                .expect("open");
        }
        let mut first = spawn(test, &format!("leased|{schema}|{owner_a}"));
        let mut owner = None;
        for _ in 0..500 {
            owner = lease_holder(&mut admin, &prefix).await;
            if owner.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(owner.as_deref(), Some(owner_a.as_str()));
        let mut second = spawn(test, &format!("leased|{schema}|{owner_b}"));
        for n in 0..40 {
            accounts
                .execute(&format!("k{}", n % ACCOUNTS), Deposit(1))
                .await
                .expect("deposit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            lease_holder(&mut admin, &prefix).await.as_deref(),
            Some(owner_a.as_str()),
            "one owner at a time"
        );
        first.kill().expect("SIGKILL the owner");
        let killed = Instant::now();
        first.wait().expect("reaped");
        let mut taken = None;
        while killed.elapsed() < Duration::from_secs(10) {
            if lease_holder(&mut admin, &prefix).await.as_deref() == Some(owner_b.as_str()) {
                taken = Some(killed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let takeover = taken.expect("the second runner took over");
        assert!(takeover <= TAKEOVER * 4, "took over in {takeover:?}");
        let mut last = None;
        for n in 0..40 {
            last = accounts
                .execute(&format!("k{}", n % ACCOUNTS), Deposit(1))
                .await
                .expect("deposit")
                .last_checkpoint;
        }
        annals::projection::wait_for_projection::<Balance, _>(
            &store,
            last.expect("deposits"),
            Duration::from_secs(30),
        )
        .await
        .expect("the new owner applied everything");
        second.kill().expect("SIGKILL");
        second.wait().expect("reaped");
        let _ = admin.close().await;
        let balances = Documents::<Balance, _>::new(store.clone());
        for n in 0..ACCOUNTS {
            let stream = format!("account-k{n}");
            let events = store.stream_version(&stream).await.expect("version");
            let balance = balances
                .get(stream.as_str())
                .await
                .expect("get")
                .expect("a document");
            assert_eq!(
                u64::from(balance.applied),
                events,
                "{stream}: each event once"
            );
        }
        takeover
    });
    eprintln!(
        "PostgreSQL: the waiting runner took over {takeover:?} after the owner was killed \
         (takeover interval {TAKEOVER:?})"
    );
}
