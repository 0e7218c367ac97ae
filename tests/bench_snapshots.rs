//! Load latency of a 10,000-event stream with and without a snapshot, per backend, in one
//! run; the ratio is the figure to quote.
//!
//! `cargo bench -p annals-tests --bench snapshots [-- --quick]`; PostgreSQL via `DATABASE_URL`.

use std::time::{Duration, Instant};

use annals::prelude::*;
use annals::{MemoryStore, PostgresOptions, PostgresStore, SqliteStore};
use annals_tests::TempDir;
use annals_tests::domain::ledger::{Credited, v1};
use sqlx::Executor;

const EVENTS: u64 = 10_000;

/// The snapshotting `v1::Ledger`'s twin without snapshots: same state, same apply code.
#[derive(Debug, Default)]
struct PlainLedger {
    total: u64,
    credits: u64,
}

#[aggregate(category = "ledger")]
impl PlainLedger {
    #[apply]
    fn credited(&mut self, e: &Credited) {
        self.total += e.amount;
        self.credits += 1;
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Median milliseconds of `loads` calls of `load`.
async fn time_loads(loads: usize, mut load: impl AsyncFnMut() -> u64) -> f64 {
    let mut samples = Vec::with_capacity(loads);
    for _ in 0..loads {
        let start = Instant::now();
        let total = load().await;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(total, EVENTS, "every event folded");
    }
    median(samples)
}

/// (without, with) snapshot: median ms to load the 10,000-event ledger.
async fn measure<S: EventStore>(store: &S, loads: usize) -> (f64, f64) {
    for batch in 0..EVENTS / 1000 {
        let events = (0..1000)
            .map(|_| NewEvent::from_event(&Credited { amount: 1 }).expect("json"))
            .collect();
        store
            .append("ledger-bench", ExpectedVersion::Exact(batch * 1000), events)
            .await
            .expect("append");
    }
    let plain = Repository::<PlainLedger, _>::new(store.clone());
    let without = time_loads(loads, async || {
        plain.load("bench").await.expect("load").total
    })
    .await;

    // The first load replays everything and writes the snapshot in the background.
    let ledgers = Repository::<v1::Ledger, _>::new(store.clone());
    let _ = ledgers.load("bench").await.expect("load");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .read_snapshot("ledger-bench")
        .await
        .expect("read snapshot")
        .is_none_or(|s| s.version < EVENTS)
    {
        assert!(Instant::now() < deadline, "no snapshot after 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let with = time_loads(loads, async || {
        ledgers.load("bench").await.expect("load").total
    })
    .await;
    (without, with)
}

#[tokio::main]
async fn main() {
    let loads = if std::env::args().any(|a| a == "--quick") {
        11
    } else {
        51
    };
    let mut rows = vec![("memory", measure(&MemoryStore::new(), loads).await)];

    let dir = TempDir::new("annals-bench-snapshots");
    let sqlite = SqliteStore::open(dir.path().join("events.db"))
        .await
        .expect("open sqlite");
    rows.push(("sqlite", measure(&sqlite, loads).await));

    let url = annals_tests::database_url();
    let schema = format!("annals_bench_{}", uuid::Uuid::now_v7().simple());
    match PostgresStore::connect_with(PostgresOptions::new(&url).schema(&schema)).await {
        Ok(postgres) => {
            rows.push(("postgres", measure(&postgres, loads).await));
            let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
            let _ = postgres.pool().execute(drop.as_str()).await;
        }
        Err(e) => eprintln!("skipping PostgreSQL: {e}"),
    }

    println!(
        "\nload of a {EVENTS}-event stream, median of {loads} loads\n\n{:<10} {:>16} {:>16} {:>8}",
        "backend", "no snapshot ms", "snapshot ms", "ratio"
    );
    for (backend, (without, with)) in rows {
        println!(
            "{backend:<10} {without:>16.3} {with:>16.3} {:>8.1}",
            without / with
        );
    }
    println!("\nratio = without / with: how many times faster a load from a snapshot is");
}
