//! annals against its Rust peers and hand-written sqlx, on one PostgreSQL, in one run.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- [--quick] [--json PATH]
//!     [--only NAME,NAME] [--reps N] [--database-url URL]
//! ```
//!
//! Every system gets fresh tables in the database `annals_bench` (created when missing),
//! runs the same Account domain, and is measured: command throughput with 1 and 8 tasks,
//! a command on a long stream with and without snapshots, the rebuild of a read model from
//! stored events, and sixteen tasks on one account (`hot_16`, for annals and the floor). The
//! run makes `--reps` passes, each measuring every system once in
//! turn, so that a slow minute on a shared machine falls on every system alike; the median
//! of the passes is reported, and the table ends with ratios against the floors.

mod count;
mod projections;
mod system;
mod systems;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use system::{Catchup, Result, System, Variant};
use systems::annals::Annals;

/// The systems, in the order they run and print.
const SYSTEMS: &[&str] = &[
    "sqlx-insert",
    "sqlx-floor",
    "annals-postgres",
    "annals-sqlite",
    "cqrs-es",
    "esrs",
    "disintegrate",
    "sqlx-proj-floor",
];
const MEASURES: &[(&str, &str)] = &[
    ("cmd_1", "events/s"),
    ("cmd_8", "events/s"),
    ("hot_ms", "ms"),
    ("hot_snap_ms", "ms"),
    ("catchup", "events/s"),
    ("hot_16", "commands/s"),
    ("proj_doc", "events/s"),
    ("proj_sql", "events/s"),
    ("proj_rebuild_1", "events/s"),
    ("proj_rebuild_4", "events/s"),
    ("proj_lag_p50_ms", "ms"),
    ("proj_lag_p99_ms", "ms"),
    ("cmd_1_inline", "events/s"),
];

/// Tasks of the `hot_16` measure, all on one account.
const HOT_TASKS: u64 = 16;

/// How much work each measure does.
#[derive(Clone, Debug)]
struct Sizes {
    /// Accounts per `cmd_*` measure; each gets 1 open and 9 deposits.
    accounts: usize,
    /// Passes over every system and measure; the median is reported.
    reps: usize,
    /// Events of history on the hot account.
    hot_history: usize,
    /// Timed deposits per `hot_*` repetition.
    hot_samples: usize,
    /// Events stored before a catch-up.
    catchup_events: usize,
    /// A second history length at which annals' `hot_snap_ms` is measured, to show it flat.
    flat_history: usize,
    /// Deposits per task of `hot_16`.
    hot_16_commands: u64,
    /// Accounts (of 10 events each) a projection catches up over in `proj_*`.
    proj_accounts: usize,
    /// Commands of `proj_lag`, at [`LAG_RATE`] a second.
    lag_commands: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            accounts: 10_000,
            reps: 3,
            hot_history: 10_000,
            hot_samples: 50,
            catchup_events: 100_000,
            flat_history: 100_000,
            hot_16_commands: 200,
            proj_accounts: 10_000,
            lag_commands: 2_500,
        }
    }

    fn quick() -> Self {
        Self {
            accounts: 200,
            reps: 3,
            hot_history: 10_000,
            hot_samples: 20,
            catchup_events: 20_000,
            flat_history: 100_000,
            hot_16_commands: 25,
            proj_accounts: 2_000,
            lag_commands: 500,
        }
    }
}

struct Args {
    sizes: Sizes,
    json: Option<PathBuf>,
    only: Option<Vec<String>>,
    url: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: annals-bench [--quick] [--json PATH] [--only NAME,...] [--reps N] [--database-url URL]\n\
         systems: {}",
        SYSTEMS.join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut sizes = Sizes::full();
    let (mut json, mut only, mut reps) = (None, None, None);
    let mut url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => sizes = Sizes::quick(),
            "--json" => json = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage());
                let names: Vec<String> = list.split(',').map(str::to_owned).collect();
                if let Some(bad) = names.iter().find(|n| !SYSTEMS.contains(&n.as_str())) {
                    eprintln!("unknown system `{bad}`");
                    usage();
                }
                only = Some(names);
            }
            "--reps" => {
                reps = args.next().and_then(|n| n.parse::<usize>().ok());
                if reps.is_none_or(|n| n == 0) {
                    usage();
                }
            }
            "--database-url" => url = args.next().unwrap_or_else(|| usage()),
            "--bench" => {} // passed by `cargo bench`
            _ => usage(),
        }
    }
    if let Some(reps) = reps {
        sizes.reps = reps;
    }
    Args {
        sizes,
        json,
        only,
        url,
    }
}

/// `url` pointing at the database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Creates the benchmark's own database, so that it never touches the test database.
async fn bench_database(url: &str) -> Result<String> {
    let pool = sqlx::PgPool::connect(url).await.map_err(|e| {
        format!(
            "cannot connect to PostgreSQL at {url}: {e}\n\
             start a server, or pass --database-url / set DATABASE_URL"
        )
    })?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'annals_bench')",
    )
    .fetch_one(&pool)
    .await?;
    if !exists {
        sqlx::raw_sql("CREATE DATABASE annals_bench")
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok(with_database(url, "annals_bench"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs `accounts` accounts (open + 9 deposits each) on `tasks` concurrent tasks; events/s.
async fn commands<S: System>(
    sys: &Arc<S>,
    prefix: &str,
    accounts: usize,
    tasks: usize,
) -> Result<f64> {
    settle().await;
    let start = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let sys = Arc::clone(sys);
        let prefix = prefix.to_owned();
        handles.push(tokio::spawn(async move {
            for n in (task..accounts).step_by(tasks) {
                let id = format!("{prefix}-{n}");
                sys.open(&id, "owner").await?;
                for amount in 1..=9 {
                    sys.deposit(&id, amount).await?;
                }
            }
            Result::<()>::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok((accounts * 10) as f64 / start.elapsed().as_secs_f64())
}

/// Lets every pool take back the connections its last user released, before a clock starts.
/// sqlx returns a pooled connection from a task of its own; an acquire that comes before
/// that task has run opens a new connection, and a new server process pays for loading the
/// catalogs on its first statement: tens of milliseconds, as long as a whole quick-size
/// catch-up.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Median milliseconds of one deposit on an account with `history` events.
async fn hot<S: System>(sys: &S, id: &str, history: usize, samples: usize) -> Result<f64> {
    sys.seed(id, history - 1).await?;
    // Warm-up: the first commands write snapshots and fill caches.
    for _ in 0..3 {
        sys.deposit(id, 1).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        sys.deposit(id, 1).await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(times))
}

/// [`HOT_TASKS`] tasks each run `commands` deposits on one account at once; commands/s,
/// and the conflicts retried meanwhile. Every deposit must succeed: a system that gives up
/// under contention fails the measure.
async fn hot_16<S: System>(sys: &Arc<S>, commands: u64) -> Result<(f64, u64)> {
    sys.open("hot16", "owner").await?;
    for _ in 0..3 {
        sys.hot_deposit("hot16", 1).await?;
    }
    settle().await;
    let retried = sys.retried();
    let start = Instant::now();
    let handles: Vec<_> = (0..HOT_TASKS)
        .map(|_| {
            let sys = Arc::clone(sys);
            tokio::spawn(async move {
                for _ in 0..commands {
                    sys.hot_deposit("hot16", 1).await?;
                }
                Result::<()>::Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    let rate = (HOT_TASKS * commands) as f64 / start.elapsed().as_secs_f64();
    Ok((rate, sys.retried() - retried))
}

/// Stores `events` events as accounts of 10 (1 open, 9 deposits of 1); returns the count
/// of accounts. Untimed setup, so eight accounts are seeded at a time: the slowest
/// systems' seeding was most of a quick run.
async fn seed_accounts<S: System>(sys: &S, events: usize) -> Result<usize> {
    use futures::{StreamExt, TryStreamExt};
    let accounts = events / 10;
    futures::stream::iter(0..accounts)
        .map(|n| async move { sys.seed(&format!("c-{n}"), 9).await })
        .buffer_unordered(SEED_TASKS)
        .try_collect::<()>()
        .await?;
    Ok(accounts)
}

/// Accounts seeded at once.
const SEED_TASKS: usize = 8;

/// What a system is built for; only annals configures itself differently per use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// `cmd_1`, `cmd_8`: configured as for a service (annals: its aggregate cache on).
    Commands,
    /// `hot_ms`, `hot_snap_ms`: as the variant says, nothing more.
    Hot,
    /// `catchup`.
    Catchup,
}

/// Every measure of one system, once (pass `pass`). `connect` builds it on fresh tables.
async fn run<S, F, Fut>(
    name: &str,
    sizes: &Sizes,
    pass: usize,
    connect: F,
    results: &mut Results,
) -> Result<()>
where
    S: System,
    F: Fn(Variant, Use) -> Fut,
    Fut: Future<Output = Result<S>>,
{
    eprintln!("== {name} (pass {})", pass + 1);
    for (measure, tasks) in [("cmd_1", 1), ("cmd_8", 8)] {
        let sys = Arc::new(connect(Variant::Plain, Use::Commands).await?);
        // Untimed first, on accounts of their own: connections, prepared statements and
        // the first pages of the tables are set up before the clock starts.
        commands(&sys, &format!("warm-{measure}"), tasks * 4, tasks).await?;
        let rate = commands(&sys, measure, sizes.accounts, tasks).await?;
        results.put(name, measure, rate);
        eprintln!("   {measure}: {rate:.0} events/s");
        if tasks == 1 && pass == 0 {
            // Statements per command, on a warm account (a lower bound where pools ping).
            sys.open("count", "owner").await?;
            sys.deposit("count", 1).await?;
            let (done, statements) = count::statements(async {
                for _ in 0..20 {
                    sys.deposit("count", 1).await?;
                }
                Result::<()>::Ok(())
            })
            .await;
            done?;
            results
                .statements
                .insert(name.to_owned(), statements as f64 / 20.0);
        }
    }
    for (measure, variant) in [
        ("hot_ms", Variant::Plain),
        ("hot_snap_ms", Variant::Snapshots),
    ] {
        let sys = connect(variant, Use::Hot).await?;
        let ms = hot(&sys, "hot", sizes.hot_history, sizes.hot_samples).await?;
        results.put(name, measure, ms);
        eprintln!("   {measure}: {ms:.3} ms");
    }
    if S::HOT_16 {
        let sys = Arc::new(connect(Variant::Plain, Use::Commands).await?);
        let (rate, retried) = hot_16(&sys, sizes.hot_16_commands).await?;
        results.put(name, "hot_16", rate);
        eprintln!("   hot_16: {rate:.0} commands/s, {retried} conflicts retried");
        if pass == 0 && name.starts_with("annals") {
            results.notes.push(format!(
                "{name} hot_16: {} commands from {HOT_TASKS} tasks on one account, {retried} of them retried after a conflict.",
                HOT_TASKS * sizes.hot_16_commands
            ));
        }
    }
    let sys = connect(Variant::Plain, Use::Catchup).await?;
    let accounts = seed_accounts(&sys, sizes.catchup_events).await?;
    // Untimed first: the first read of new rows writes their commit hint bits, a cost
    // that falls on whoever reads first, not on a rebuild of settled history.
    timed_catchup("catch-up", accounts, sys.catchup()).await?;
    let rate = timed_catchup("catch-up", accounts, sys.catchup()).await?;
    results.put(name, "catchup", rate);
    eprintln!("   catchup: {rate:.0} events/s");
    Ok(())
}

#[derive(Default)]
struct Results {
    /// Every pass's value of each (system, measure).
    values: BTreeMap<(String, String), Vec<f64>>,
    statements: BTreeMap<String, f64>,
    notes: Vec<String>,
}

impl Results {
    fn put(&mut self, system: &str, measure: &str, value: f64) {
        self.values
            .entry((system.to_owned(), measure.to_owned()))
            .or_default()
            .push(value);
    }

    /// The median over the passes.
    fn get(&self, system: &str, measure: &str) -> Option<f64> {
        self.values
            .get(&(system.to_owned(), measure.to_owned()))
            .map(|values| median(values.clone()))
    }

    fn ratio(
        &self,
        system: &str,
        measure: &str,
        base: &str,
        higher_is_better: bool,
    ) -> Option<f64> {
        let (v, b) = (self.get(system, measure)?, self.get(base, measure)?);
        Some(if higher_is_better { v / b } else { b / v })
    }

    fn print(&self, systems: &[&str]) {
        // The projection floor has read-side figures only.
        let write_side: Vec<&str> = systems
            .iter()
            .copied()
            .filter(|s| *s != "sqlx-proj-floor")
            .collect();
        println!();
        println!(
            "| system | cmd_1 (events/s) | cmd_8 (events/s) | hot_ms | hot_snap_ms | catchup (events/s) | hot_16 (commands/s) | statements/cmd |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for system in &write_side {
            let cell = |m: &str, digits: usize| {
                self.get(system, m)
                    .map_or("error".to_owned(), |v| format!("{v:.digits$}"))
            };
            let statements = self
                .statements
                .get(*system)
                .map_or("-".to_owned(), |s| format!("{s:.1}"));
            let hot_16 = match self.get(system, "hot_16") {
                Some(v) => format!("{v:.0}"),
                None => "-".to_owned(),
            };
            println!(
                "| {system} | {} | {} | {} | {} | {} | {hot_16} | {statements} |",
                cell("cmd_1", 0),
                cell("cmd_8", 0),
                cell("hot_ms", 2),
                cell("hot_snap_ms", 3),
                cell("catchup", 0),
            );
        }
        println!();
        println!(
            "Ratios (above 1 is better): cmd_* against sqlx-insert, hot_* against sqlx-floor (time ratio), hot_16 against sqlx-floor."
        );
        println!();
        println!(
            "| system | cmd_1 / insert | cmd_8 / insert | sqlx-floor hot_ms / hot_ms | sqlx-floor hot_ms / hot_snap_ms | hot_16 / floor |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for system in &write_side {
            let r = |m: &str, base: &str, up: bool| {
                self.ratio(system, m, base, up)
                    .map_or("-".to_owned(), |v| format!("{v:.2}x"))
            };
            let snap = match (
                self.get("sqlx-floor", "hot_ms"),
                self.get(system, "hot_snap_ms"),
            ) {
                (Some(f), Some(s)) => format!("{:.2}x", f / s),
                _ => "-".to_owned(),
            };
            println!(
                "| {system} | {} | {} | {} | {snap} | {} |",
                r("cmd_1", "sqlx-insert", true),
                r("cmd_8", "sqlx-insert", true),
                r("hot_ms", "sqlx-floor", false),
                r("hot_16", "sqlx-floor", true),
            );
        }
        projections::print(self, systems);
        for note in &self.notes {
            println!();
            println!("{note}");
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut out = Vec::new();
        for ((system, measure), values) in &self.values {
            let Some((_, unit)) = MEASURES.iter().find(|(m, _)| m == measure) else {
                continue;
            };
            let value = median(values.clone());
            if SYSTEMS.contains(&system.as_str()) {
                out.push(serde_json::json!({
                    "system": system, "measure": measure, "value": value, "unit": unit,
                }));
            }
        }
        serde_json::Value::Array(out)
    }
}

fn sqlite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
}

/// One pass of system `name`.
async fn run_one(
    name: &str,
    url: &str,
    sizes: &Sizes,
    pass: usize,
    results: &mut Results,
) -> Result<()> {
    use systems::{cqrs_es, disintegrate, esrs, floor};
    // A SQLite file per store, never reused: a dropped store's connections close in the
    // background, and deleting a database under them would fail their last writes.
    static SQLITE_STORES: AtomicUsize = AtomicUsize::new(0);
    match name {
        "sqlx-insert" => {
            let connect = |v, _| floor::Insert::connect(url, v);
            run(name, sizes, pass, connect, results).await
        }
        "sqlx-floor" => {
            let connect = |v, _| floor::Floor::connect(url, v);
            run(name, sizes, pass, connect, results).await
        }
        "annals-postgres" => {
            let connect = |v, u| Annals::postgres(url, v, u == Use::Commands);
            run(name, sizes, pass, connect, results).await?;
            projections::postgres_pass(url, sizes, results).await
        }
        "annals-sqlite" => {
            let dir = sqlite_dir();
            std::fs::create_dir_all(&dir)?;
            let connect = |v, u| {
                let n = SQLITE_STORES.fetch_add(1, Ordering::Relaxed);
                let file = dir.join(format!("annals-{n}.db"));
                async move { Annals::sqlite(&file, v, u == Use::Commands).await }
            };
            run(name, sizes, pass, connect, results).await?;
            let n = SQLITE_STORES.fetch_add(1, Ordering::Relaxed);
            let file = dir.join(format!("annals-{n}.db"));
            projections::sqlite_pass(&file, sizes, results).await
        }
        "cqrs-es" => {
            let connect = |v, _| cqrs_es::Peer::connect(url, v);
            run(name, sizes, pass, connect, results).await?;
            projections::cqrs_es_pass(url, sizes, results).await
        }
        "esrs" => {
            let connect = |v, _| esrs::Peer::connect(url, v);
            run(name, sizes, pass, connect, results).await?;
            projections::esrs_pass(url, sizes, results).await
        }
        "disintegrate" => {
            let connect = |v, _| disintegrate::Peer::connect(url, v);
            run(name, sizes, pass, connect, results).await
        }
        "sqlx-proj-floor" => projections::floor_pass(url, sizes, results).await,
        _ => Err(format!("unknown system {name}").into()),
    }
}

/// Rounds of the paired catch-up comparison, at least.
const PAIRED_ROUNDS: usize = 15;

/// The rate of one catch-up, checked to have seen every account.
async fn timed_catchup(
    what: &str,
    accounts: usize,
    catchup: impl Future<Output = Result<Catchup>>,
) -> Result<f64> {
    settle().await;
    let start = Instant::now();
    let model = catchup.await?;
    let rate = model.events as f64 / start.elapsed().as_secs_f64();
    if model.balances.len() != accounts || model.events != (accounts * 10) as u64 {
        return Err(format!(
            "{what} saw {} events of {} accounts; {} events of {accounts} were stored",
            model.events,
            model.balances.len(),
            accounts * 10
        )
        .into());
    }
    if let Some((id, balance)) = model.balances.iter().find(|(_, b)| **b != 9) {
        return Err(format!("{what}: account {id} has balance {balance}, not 9").into());
    }
    Ok(rate)
}

/// Accounts per system per round of the paired command comparison.
const PAIRED_ACCOUNTS: usize = 200;

/// annals' `cmd_*` against `sqlx-insert`'s, alternating in rounds of [`PAIRED_ACCOUNTS`]
/// accounts, the order swapped every round: a checkpoint or an autovacuum run on this shared
/// machine then slows one round of each rather than one system's whole measure. The median
/// of the rounds' ratios is noted.
async fn paired_commands(url: &str, results: &mut Results) -> Result<()> {
    let insert = Arc::new(systems::floor::Insert::connect(url, Variant::Plain).await?);
    let annals = Arc::new(Annals::postgres(url, Variant::Plain, true).await?);
    for (measure, tasks) in [("cmd_1", 1), ("cmd_8", 8)] {
        let warm = format!("warm-{measure}");
        commands(&insert, &warm, tasks * 4, tasks).await?;
        commands(&annals, &warm, tasks * 4, tasks).await?;
        let mut ratios = Vec::with_capacity(PAIRED_ROUNDS);
        for round in 0..PAIRED_ROUNDS {
            let prefix = format!("{measure}-{round}");
            let (a, b) = if round % 2 == 0 {
                let a = commands(&annals, &prefix, PAIRED_ACCOUNTS, tasks).await?;
                (a, commands(&insert, &prefix, PAIRED_ACCOUNTS, tasks).await?)
            } else {
                let b = commands(&insert, &prefix, PAIRED_ACCOUNTS, tasks).await?;
                (commands(&annals, &prefix, PAIRED_ACCOUNTS, tasks).await?, b)
            };
            ratios.push(a / b);
        }
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
        results.notes.push(format!(
            "annals-postgres {measure}, alternating with sqlx-insert ({PAIRED_ROUNDS} rounds of \
             {PAIRED_ACCOUNTS} accounts each): {:.2}x, the median of the rounds' ratios \
             ({low:.2}x to {high:.2}x).",
            median(ratios)
        ));
    }
    Ok(())
}

/// annals-only figures: its commands and catch-up paired with their baselines, and
/// `hot_snap_ms` on a much longer history (it should not grow).
async fn annals_extras(url: &str, sizes: &Sizes, results: &mut Results) -> Result<()> {
    let note = projections::paired_proj_doc(url, sizes.proj_accounts, PAIRED_ROUNDS).await?;
    eprintln!("   {note}");
    results.notes.push(note);
    paired_commands(url, results).await?;
    let sys = Annals::postgres(url, Variant::Plain, false).await?;
    let accounts = seed_accounts(&sys, sizes.catchup_events).await?;
    // Alternating on the same rows, so both see the same cache and the same background
    // work; a catch-up of the quick size takes only tens of milliseconds.
    let rounds = sizes.reps.max(PAIRED_ROUNDS);
    let (mut raw, mut resumable, mut annals) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(timed_catchup("raw read", accounts, sys.raw_catchup()).await?);
        annals.push(timed_catchup("catch_up", accounts, sys.catchup()).await?);
        let read = sys.raw_resumable_catchup();
        resumable.push(timed_catchup("resumable raw read", accounts, read).await?);
    }
    let (raw, resumable, annals) = (median(raw), median(resumable), median(annals));
    results.notes.push(format!(
        "annals-postgres catch-up, alternating with a raw sqlx read-and-deserialize of the same \
         rows ({rounds} rounds, medians): {annals:.0} events/s through `EventStore::catch_up` \
         against {raw:.0} events/s: {:.2}x. Against a hand-written read of the seven columns \
         the same catch-up needs, in its pages: {resumable:.0} events/s, {:.2}x.",
        annals / raw,
        annals / resumable
    ));
    // One long history, sampled as often as all passes together sample the short one:
    // seeding it is most of the work.
    let sys = Annals::postgres(url, Variant::Snapshots, false).await?;
    let samples = sizes.hot_samples * sizes.reps;
    let flat = hot(&sys, "flat", sizes.flat_history, samples).await?;
    if let Some(base) = results.get("annals-postgres", "hot_snap_ms") {
        results.notes.push(format!(
            "annals-postgres hot_snap_ms: {base:.3} ms at {} events of history, {flat:.3} ms at {}.",
            sizes.hot_history, sizes.flat_history
        ));
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    count::install();
    let args = parse_args();
    let url = match bench_database(&args.url).await {
        Ok(url) => url,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let systems: Vec<&str> = SYSTEMS
        .iter()
        .copied()
        .filter(|s| {
            args.only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == s))
        })
        .collect();
    eprintln!("sizes: {:?}", args.sizes);
    let started = Instant::now();
    let mut results = Results::default();
    let mut failed: Vec<&str> = Vec::new();
    for pass in 0..args.sizes.reps {
        for name in &systems {
            if failed.contains(name) {
                continue;
            }
            if let Err(e) = run_one(name, &url, &args.sizes, pass, &mut results).await {
                eprintln!("error: {name}: {e}");
                results.notes.push(format!("{name} failed: {e}"));
                failed.push(name);
            }
        }
    }
    if systems.contains(&"annals-postgres")
        && !failed.contains(&"annals-postgres")
        && let Err(e) = annals_extras(&url, &args.sizes, &mut results).await
    {
        eprintln!("error: annals-postgres extras: {e}");
        results
            .notes
            .push(format!("annals-postgres extras failed: {e}"));
        failed.push("annals-postgres");
    }
    results.print(&systems);
    println!();
    println!(
        "({} systems in {:.0} s)",
        systems.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results.json()).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            failed.push("--json");
        }
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
