//! The read side: a projection's catch-up from position 0 into documents (`proj_doc`) and
//! into a SQL table (`proj_sql`), the lag from a command's return to the async projection
//! showing it (`proj_lag_p50_ms`, `proj_lag_p99_ms`), and commands with an inline
//! projection (`cmd_1_inline`). The model everywhere: the balance of each account.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use annals::prelude::*;
use annals::projection::{Documents, Projection, ProjectionStore, Runner};
use annals::sqlx::{Postgres, Sqlite, Transaction};
use annals::{Checkpoint, PostgresStore, SqliteStore};

use crate::system::{Result, System, Variant};
use crate::systems::annals::{Annals, Deposited, Opened, Withdrawn};
use crate::{Results, Sizes};

/// Each account's balance, one document per account, as projection `$name`.
macro_rules! balance_doc {
    ($(#[$doc:meta])* $ty:ident, $($option:tt)*) => {
        $(#[$doc])*
        #[derive(Default, Serialize, Deserialize, Debug)]
        pub struct $ty {
            pub balance: i64,
        }

        #[projection($($option)*)]
        impl $ty {
            #[handle]
            fn opened(&mut self, _: &Opened) {}

            #[handle]
            fn deposited(&mut self, e: &Deposited) {
                self.balance += e.amount as i64;
            }

            #[handle]
            fn withdrawn(&mut self, e: &Withdrawn) {
                self.balance -= e.amount as i64;
            }
        }
    };
}

balance_doc!(
    /// Each account's balance, one document per account.
    BalanceDoc,
    name = "bench_balances"
);
balance_doc!(
    /// [`BalanceDoc`] split into four parts by account (`proj_rebuild_4`).
    BalanceShards,
    name = "bench_balances_sharded",
    shards = 4
);

/// Each account's balance in a table of its own, one statement per event: what a
/// handler that writes SQL does.
macro_rules! balance_table {
    ($ty:ident, $db:ident, $table:literal) => {
        #[derive(Default)]
        pub struct $ty;

        #[projection(name = "bench_balance_rows")]
        impl $ty {
            #[setup]
            async fn setup(
                tx: &mut Transaction<'_, $db>,
            ) -> std::result::Result<(), annals::sqlx::Error> {
                annals::sqlx::query(concat!(
                    "CREATE TABLE IF NOT EXISTS ",
                    $table,
                    " (account TEXT PRIMARY KEY, balance BIGINT NOT NULL)"
                ))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            #[handle]
            async fn opened(
                tx: &mut Transaction<'_, $db>,
                _: &Opened,
                meta: &annals::projection::EventMeta,
            ) -> std::result::Result<(), annals::sqlx::Error> {
                annals::sqlx::query(concat!(
                    "INSERT INTO ",
                    $table,
                    " (account, balance) VALUES ($1, 0) ON CONFLICT (account) DO NOTHING"
                ))
                .bind(&meta.stream_id)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            #[handle]
            async fn deposited(
                tx: &mut Transaction<'_, $db>,
                e: &Deposited,
                meta: &annals::projection::EventMeta,
            ) -> std::result::Result<(), annals::sqlx::Error> {
                annals::sqlx::query(concat!(
                    "UPDATE ",
                    $table,
                    " SET balance = balance + $2 WHERE account = $1"
                ))
                .bind(&meta.stream_id)
                .bind(e.amount as i64)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            #[handle]
            async fn withdrawn(
                tx: &mut Transaction<'_, $db>,
                e: &Withdrawn,
                meta: &annals::projection::EventMeta,
            ) -> std::result::Result<(), annals::sqlx::Error> {
                annals::sqlx::query(concat!(
                    "UPDATE ",
                    $table,
                    " SET balance = balance - $2 WHERE account = $1"
                ))
                .bind(&meta.stream_id)
                .bind(e.amount as i64)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }
    };
}

balance_table!(BalanceRowsPg, Postgres, "bench_balance_rows");
balance_table!(BalanceRowsLite, Sqlite, "bench_balance_rows");

/// Checks that every seeded account's document holds 9 (one open, nine deposits of 1).
async fn check_documents<S: ProjectionStore>(store: &S, accounts: usize) -> Result<()> {
    let documents = Documents::<BalanceDoc, _>::new(store.clone());
    let (mut seen, mut after) = (0, None::<String>);
    loop {
        let page = documents.list(after.as_deref(), 5_000).await?;
        for (key, document) in &page.items {
            if document.balance != 9 {
                return Err(
                    format!("document {key} has balance {}, not 9", document.balance).into(),
                );
            }
        }
        seen += page.items.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if seen != accounts {
        return Err(format!("{seen} documents for {accounts} accounts").into());
    }
    Ok(())
}

/// `proj_doc`: events/s for the document projection to catch up from position 0 over
/// every stored event, until its checkpoint reaches the head.
pub async fn proj_doc<S: ProjectionStore>(store: &S, accounts: usize) -> Result<f64> {
    let events = (accounts * 10) as f64;
    // The projection's row, and a connection of the store's for projections, made before
    // the clock starts: a service's runner pays for them once, not per catch-up.
    store.open_projection(BalanceDoc::NAME, 1).await?;
    crate::settle().await;
    let start = Instant::now();
    Runner::new(store.clone())
        .with::<BalanceDoc>()
        .catch_up()
        .await?;
    let rate = events / start.elapsed().as_secs_f64();
    check_documents(store, accounts).await?;
    Ok(rate)
}

/// `proj_rebuild_4`: events/s for a rebuild of [`BalanceShards`], four parts built by
/// four tasks at once, from position 0 until the new generation takes over. Built once
/// untimed, so that the rebuild replaces a live generation as in service.
pub async fn proj_rebuild_4(store: &PostgresStore, accounts: usize) -> Result<f64> {
    proj_rebuild::<BalanceShards>(store, accounts).await
}

/// `proj_rebuild_1`: the same rebuild of [`BalanceDoc`], in one piece: the baseline that
/// tells what the four parts bring.
pub async fn proj_rebuild_1(store: &PostgresStore, accounts: usize) -> Result<f64> {
    proj_rebuild::<BalanceDoc>(store, accounts).await
}

async fn proj_rebuild<P: annals::projection::DocumentProjection>(
    store: &PostgresStore,
    accounts: usize,
) -> Result<f64> {
    let events = (accounts * 10) as f64;
    let runner = Runner::new(store.clone()).with::<P>();
    runner.catch_up().await?;
    crate::settle().await;
    let start = Instant::now();
    let done = runner.rebuild::<P>(|_| {}).await?;
    let rate = events / start.elapsed().as_secs_f64();
    if done.generation < 2 {
        return Err(format!("the rebuild built generation {}", done.generation).into());
    }
    let mut seen = 0;
    let mut after: Option<String> = None;
    let documents = Documents::<P, _>::new(store.clone());
    loop {
        let page = documents.list(after.as_deref(), 5000).await?;
        seen += page.items.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if seen != accounts {
        return Err(format!("{seen} documents for {accounts} accounts after the rebuild").into());
    }
    Ok(rate)
}

/// `proj_sql` on PostgreSQL: the same into a table, one statement per event.
pub async fn proj_sql_postgres(store: &PostgresStore, accounts: usize) -> Result<f64> {
    annals::sqlx::query("DROP TABLE IF EXISTS bench_balance_rows")
        .execute(store.pool())
        .await?;
    crate::settle().await;
    let start = Instant::now();
    Runner::new(store.clone())
        .with_tables::<BalanceRowsPg>()
        .catch_up()
        .await?;
    let rate = (accounts * 10) as f64 / start.elapsed().as_secs_f64();
    let (rows, total): (i64, Option<i64>) =
        annals::sqlx::query_as("SELECT count(*), sum(balance)::int8 FROM bench_balance_rows")
            .fetch_one(store.pool())
            .await?;
    check_rows(rows, total, accounts)?;
    Ok(rate)
}

/// `proj_sql` on SQLite.
pub async fn proj_sql_sqlite(store: &SqliteStore, accounts: usize) -> Result<f64> {
    crate::settle().await;
    let start = Instant::now();
    Runner::new(store.clone())
        .with_tables::<BalanceRowsLite>()
        .catch_up()
        .await?;
    let rate = (accounts * 10) as f64 / start.elapsed().as_secs_f64();
    let (rows, total): (i64, Option<i64>) =
        annals::sqlx::query_as("SELECT count(*), sum(balance) FROM bench_balance_rows")
            .fetch_one(store.pool())
            .await?;
    check_rows(rows, total, accounts)?;
    Ok(rate)
}

fn check_rows(rows: i64, total: Option<i64>, accounts: usize) -> Result<()> {
    if rows != accounts as i64 || total != Some(9 * accounts as i64) {
        return Err(format!("{rows} rows summing to {total:?} for {accounts} accounts").into());
    }
    Ok(())
}

/// `proj_lag_p50_ms`, `proj_lag_p99_ms`: commands at a steady `rate` per second for
/// `commands` commands, each on one of 100 accounts; from each command's return to the
/// async projection's checkpoint passing its event, read every half millisecond by one
/// watcher, as a reader elsewhere would see it.
pub async fn proj_lag(url: &str, commands: usize, rate: f64) -> Result<(f64, f64)> {
    let sys = Arc::new(Annals::postgres(url, Variant::Plain, true).await?);
    let store = sys.store().clone();
    for n in 0..100 {
        sys.open(&format!("lag-{n}"), "owner").await?;
    }
    let running = Runner::new(store.clone()).with::<BalanceDoc>().start();
    let warm = sys.deposit_at("lag-0", 1).await?;
    running.wait_for(warm, Duration::from_secs(10)).await?;

    let pending: Arc<Mutex<Vec<(Checkpoint, Instant)>>> = Arc::default();
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (pending, lags, watching, store) = (
            pending.clone(),
            lags.clone(),
            watching.clone(),
            store.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let (_, reached) = store.open_projection("bench_balances", 1).await?;
                let now = Instant::now();
                let mut pending = pending.lock().map_err(|_| "poisoned")?;
                let mut lags = lags.lock().map_err(|_| "poisoned")?;
                pending.retain(|(at, returned)| {
                    let shown = *at <= reached;
                    if shown {
                        lags.push(now.duration_since(*returned).as_secs_f64() * 1000.0);
                    }
                    !shown
                });
                if pending.is_empty() && !watching.load(std::sync::atomic::Ordering::Relaxed) {
                    return Result::<()>::Ok(());
                }
            }
        })
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    for n in 0..commands {
        tokio::time::sleep_until(start + interval * n as u32).await;
        let at = sys.deposit_at(&format!("lag-{}", n % 100), 1).await?;
        let returned = Instant::now();
        pending
            .lock()
            .map_err(|_| "poisoned")?
            .push((at.ok_or("no checkpoint")?, returned));
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(30), watcher).await???;
    running.shutdown().await?;
    let mut lags = std::mem::take(&mut *lags.lock().map_err(|_| "poisoned")?);
    lags.sort_by(f64::total_cmp);
    if lags.len() != commands {
        return Err(format!("{} of {commands} commands seen", lags.len()).into());
    }
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// The hand-written floor of `proj_doc`: annals' own rows read in pages of their columns,
/// folded per account in memory, the changed rows upserted and a checkpoint written per
/// page in one transaction. Reads the rows of `annals` (seeded by the caller).
pub async fn floor_proj_doc(url: &str, accounts: usize) -> Result<f64> {
    use annals::sqlx::Row;
    use futures::TryStreamExt;
    const PAGE: i64 = 4096;
    let pool = annals::sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await?;
    annals::sqlx::raw_sql(
        "DROP TABLE IF EXISTS floor_balances; DROP TABLE IF EXISTS floor_checkpoint; \
         CREATE TABLE floor_balances (account text PRIMARY KEY, balance bigint NOT NULL); \
         CREATE TABLE floor_checkpoint (id int PRIMARY KEY, transaction_id bigint, position bigint); \
         INSERT INTO floor_checkpoint VALUES (1, 0, 0)",
    )
    .execute(&pool)
    .await?;
    let read = "SELECT stream_id, event_name, payload::text, transaction_id::text::int8, position \
         FROM bench_annals.annals_events \
         WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
           AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
         ORDER BY transaction_id, position LIMIT $3";
    crate::settle().await;
    let start = Instant::now();
    let (mut transaction, mut position) = (0i64, 0i64);
    let mut conn = pool.acquire().await?;
    loop {
        let mut deltas: HashMap<String, i64> = HashMap::new();
        let mut read_rows = 0;
        {
            let mut rows = annals::sqlx::query(read)
                .bind(transaction)
                .bind(position)
                .bind(PAGE)
                .fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                let stream: &str = row.try_get(0)?;
                let name: &str = row.try_get(1)?;
                let payload: &str = row.try_get(2)?;
                transaction = row.try_get(3)?;
                position = row.try_get(4)?;
                let delta = match name {
                    "Opened" => {
                        let _: Opened = serde_json::from_str(payload)?;
                        0
                    }
                    "Deposited" => serde_json::from_str::<Deposited>(payload)?.amount as i64,
                    "Withdrawn" => -(serde_json::from_str::<Withdrawn>(payload)?.amount as i64),
                    other => return Err(format!("unknown event {other}").into()),
                };
                *deltas.entry(stream.to_owned()).or_default() += delta;
                read_rows += 1;
            }
        }
        if read_rows == 0 {
            break;
        }
        let (keys, values): (Vec<String>, Vec<i64>) = deltas.into_iter().unzip();
        let mut tx = annals::sqlx::Connection::begin(&mut *conn).await?;
        annals::sqlx::query(
            "INSERT INTO floor_balances (account, balance) SELECT * FROM UNNEST($1::text[], $2::int8[]) \
             ON CONFLICT (account) DO UPDATE SET balance = floor_balances.balance + excluded.balance",
        )
        .bind(&keys)
        .bind(&values)
        .execute(&mut *tx)
        .await?;
        annals::sqlx::query(
            "UPDATE floor_checkpoint SET transaction_id = $1, position = $2 WHERE id = 1",
        )
        .bind(transaction)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if read_rows < PAGE {
            break;
        }
    }
    let rate = (accounts * 10) as f64 / start.elapsed().as_secs_f64();
    let (rows, total): (i64, Option<i64>) =
        annals::sqlx::query_as("SELECT count(*), sum(balance)::int8 FROM floor_balances")
            .fetch_one(&mut *conn)
            .await?;
    check_rows(rows, total, accounts)?;
    Ok(rate)
}

/// Commands per second of `proj_lag`.
pub const LAG_RATE: f64 = 500.0;

/// `cmd_1` on a store with `BalanceDoc` inline: accounts of one open and nine deposits,
/// one task, after an untimed warm-up.
async fn cmd_1_inline<S: ProjectionStore>(sys: Annals<S>, accounts: usize) -> Result<(f64, f64)> {
    let sys = Arc::new(sys.inline::<BalanceDoc>(true).await?);
    crate::commands(&sys, "warm-inline", 4, 1).await?;
    let rate = crate::commands(&sys, "inline", accounts, 1).await?;
    // Statements per Deposit on a warm account, as for `cmd_1` (sqlx logs no `BEGIN`).
    let (done, statements) = crate::count::statements(async {
        for _ in 0..20 {
            sys.deposit("inline-0", 1).await?;
        }
        Result::<()>::Ok(())
    })
    .await;
    done?;
    Ok((rate, statements as f64 / 20.0))
}

/// Notes, once, how many statements an inline command sends.
fn note_inline(results: &mut Results, name: &str, statements: f64) {
    let note = format!(
        "{name} cmd_1_inline: {statements:.1} statements per deposit on a warm account, plus the \
         transaction's BEGIN (against cmd_1's in the table above)."
    );
    if !results.notes.contains(&note)
        && !results
            .notes
            .iter()
            .any(|n| n.starts_with(&format!("{name} cmd_1_inline")))
    {
        results.notes.push(note);
    }
}

/// The read-side measures of annals on PostgreSQL, one pass.
pub async fn postgres_pass(url: &str, sizes: &Sizes, results: &mut Results) -> Result<()> {
    const NAME: &str = "annals-postgres";
    let sys = Annals::postgres(url, Variant::Plain, false).await?;
    let accounts = crate::seed_accounts(&sys, sizes.proj_accounts * 10).await?;
    // Untimed first, as for every catch-up: the first read of new rows sets their hint bits.
    sys.catchup().await?;
    let rate = proj_doc(sys.store(), accounts).await?;
    results.put(NAME, "proj_doc", rate);
    eprintln!("   proj_doc: {rate:.0} events/s");
    let rate = proj_sql_postgres(sys.store(), accounts).await?;
    results.put(NAME, "proj_sql", rate);
    eprintln!("   proj_sql: {rate:.0} events/s");
    let rate = proj_rebuild_1(sys.store(), accounts).await?;
    results.put(NAME, "proj_rebuild_1", rate);
    eprintln!("   proj_rebuild_1: {rate:.0} events/s");
    let rate = proj_rebuild_4(sys.store(), accounts).await?;
    results.put(NAME, "proj_rebuild_4", rate);
    eprintln!("   proj_rebuild_4: {rate:.0} events/s");
    let (p50, p99) = proj_lag(url, sizes.lag_commands, LAG_RATE).await?;
    results.put(NAME, "proj_lag_p50_ms", p50);
    results.put(NAME, "proj_lag_p99_ms", p99);
    eprintln!("   proj_lag: p50 {p50:.2} ms, p99 {p99:.2} ms");
    let sys = Annals::postgres(url, Variant::Plain, true).await?;
    let (rate, statements) = cmd_1_inline(sys, sizes.accounts).await?;
    results.put(NAME, "cmd_1_inline", rate);
    eprintln!("   cmd_1_inline: {rate:.0} events/s, {statements:.1} statements/cmd");
    note_inline(results, NAME, statements);
    Ok(())
}

/// The read-side measures of annals on a SQLite file at `path`, one pass.
pub async fn sqlite_pass(
    path: &std::path::Path,
    sizes: &Sizes,
    results: &mut Results,
) -> Result<()> {
    const NAME: &str = "annals-sqlite";
    let sys = Annals::sqlite(path, Variant::Plain, false).await?;
    let accounts = crate::seed_accounts(&sys, sizes.proj_accounts * 10).await?;
    // Untimed first, as for every catch-up: the first read of new rows sets their hint bits.
    sys.catchup().await?;
    let rate = proj_doc(sys.store(), accounts).await?;
    results.put(NAME, "proj_doc", rate);
    eprintln!("   proj_doc: {rate:.0} events/s");
    let rate = proj_sql_sqlite(sys.store(), accounts).await?;
    results.put(NAME, "proj_sql", rate);
    eprintln!("   proj_sql: {rate:.0} events/s");
    let mut inline = path.as_os_str().to_owned();
    inline.push("-inline");
    let sys = Annals::sqlite(std::path::Path::new(&inline), Variant::Plain, true).await?;
    let (rate, statements) = cmd_1_inline(sys, sizes.accounts).await?;
    results.put(NAME, "cmd_1_inline", rate);
    eprintln!("   cmd_1_inline: {rate:.0} events/s, {statements:.1} statements/cmd");
    note_inline(results, NAME, statements);
    Ok(())
}

/// `sqlx-proj-floor`, one pass: annals' rows seeded (untimed), then the hand-written
/// projection over them.
pub async fn floor_pass(url: &str, sizes: &Sizes, results: &mut Results) -> Result<()> {
    eprintln!("== sqlx-proj-floor");
    let sys = Annals::postgres(url, Variant::Plain, false).await?;
    let accounts = crate::seed_accounts(&sys, sizes.proj_accounts * 10).await?;
    // Untimed first, as for every catch-up: the first read of new rows sets their hint bits.
    floor_proj_doc(url, accounts).await?;
    let rate = floor_proj_doc(url, accounts).await?;
    results.put("sqlx-proj-floor", "proj_doc", rate);
    eprintln!("   proj_doc: {rate:.0} events/s");
    Ok(())
}

/// The read side's table, after the write side's.
pub fn print(results: &Results, systems: &[&str]) {
    let with: Vec<&&str> = systems
        .iter()
        .filter(|s| results.get(s, "proj_doc").is_some())
        .collect();
    if with.is_empty() {
        return;
    }
    println!();
    println!(
        "| system | proj_doc (events/s) | proj_sql (events/s) | proj_rebuild_1 (events/s) | proj_rebuild_4 (events/s) | proj_lag_p50_ms | proj_lag_p99_ms | cmd_1_inline (events/s) | proj_doc / floor | proj_rebuild_4 / proj_doc | proj_rebuild_4 / proj_rebuild_1 | cmd_1_inline / cmd_1 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for system in with {
        let cell = |m: &str, digits: usize| {
            results
                .get(system, m)
                .map_or("-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        println!(
            "| {system} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell("proj_doc", 0),
            cell("proj_sql", 0),
            cell("proj_rebuild_1", 0),
            cell("proj_rebuild_4", 0),
            cell("proj_lag_p50_ms", 2),
            cell("proj_lag_p99_ms", 2),
            cell("cmd_1_inline", 0),
            ratio(
                results.get(system, "proj_doc"),
                results.get("sqlx-proj-floor", "proj_doc")
            ),
            ratio(
                results.get(system, "proj_rebuild_4"),
                results.get(system, "proj_doc")
            ),
            ratio(
                results.get(system, "proj_rebuild_4"),
                results.get(system, "proj_rebuild_1")
            ),
            ratio(
                results.get(system, "cmd_1_inline"),
                results.get(system, "cmd_1")
            ),
        );
    }
}

/// `proj_doc` of annals paired with the floor's on the same rows, alternating for
/// `rounds` rounds, the order swapped every round; the median of the rounds' ratios, and
/// the two medians.
pub async fn paired_proj_doc(url: &str, accounts: usize, rounds: usize) -> Result<String> {
    let sys = Annals::postgres(url, Variant::Plain, false).await?;
    let accounts = crate::seed_accounts(&sys, accounts * 10).await?;
    sys.catchup().await?;
    let store = sys.store().clone();
    let reset = || async {
        annals::sqlx::raw_sql(
            "DELETE FROM bench_annals.annals_documents; DELETE FROM bench_annals.annals_projections",
        )
        .execute(store.pool())
        .await
    };
    let (mut ours, mut floor, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        reset().await?;
        let (a, b) = if round % 2 == 0 {
            let a = proj_doc(&store, accounts).await?;
            (a, floor_proj_doc(url, accounts).await?)
        } else {
            let b = floor_proj_doc(url, accounts).await?;
            (proj_doc(&store, accounts).await?, b)
        };
        ours.push(a);
        floor.push(b);
        ratios.push(a / b);
    }
    Ok(format!(
        "annals-postgres proj_doc, alternating with sqlx-proj-floor on the same {} events \
         ({rounds} rounds, medians): {:.0} events/s against {:.0}: {:.2}x.",
        accounts * 10,
        crate::median(ours),
        crate::median(floor),
        crate::median(ratios)
    ))
}

/// `proj_doc` of cqrs-es, one pass: seeded through its own command path (untimed), then
/// its `GenericQuery` replayed over every event.
pub async fn cqrs_es_pass(url: &str, sizes: &Sizes, results: &mut Results) -> Result<()> {
    let peer = crate::systems::cqrs_es::Peer::connect(url, Variant::Plain).await?;
    let accounts = crate::seed_accounts(&peer, sizes.proj_accounts * 10).await?;
    // Untimed first: the first read of new rows sets their hint bits.
    peer.catchup().await?;
    let rate = peer.proj_doc(accounts).await?;
    results.put("cqrs-es", "proj_doc", rate);
    eprintln!("   proj_doc: {rate:.0} events/s");
    Ok(())
}

/// `proj_doc` of esrs, one pass: seeded through its own path (untimed), then its
/// event-handler rebuild over every event.
pub async fn esrs_pass(url: &str, sizes: &Sizes, results: &mut Results) -> Result<()> {
    let peer = crate::systems::esrs::Peer::connect(url, Variant::Plain).await?;
    let accounts = crate::seed_accounts(&peer, sizes.proj_accounts * 10).await?;
    peer.catchup().await?;
    let rate = peer.proj_doc(accounts).await?;
    results.put("esrs", "proj_doc", rate);
    eprintln!("   proj_doc: {rate:.0} events/s");
    Ok(())
}
