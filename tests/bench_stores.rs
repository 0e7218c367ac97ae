//! Append throughput and load latency of every store, each beside a hand-written sqlx
//! baseline doing the same work on the same database in the same run.
//!
//! `cargo bench -p annals-tests --bench stores [-- --quick]`; PostgreSQL via `DATABASE_URL`.

use std::time::Instant;

use annals::prelude::*;
use annals::{EventStore, MemoryStore, PostgresOptions, PostgresStore, SqliteStore};
use annals_tests::TempDir;
use annals_tests::domain::{Account, Deposited, Opened};
use sqlx::{Connection, Executor};

struct Sizes {
    single: u64,
    batches: u64,
    loads: usize,
}

struct Row {
    backend: &'static str,
    measure: &'static str,
    annals: f64,
    baseline: Option<f64>,
    unit: &'static str,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn deposit(n: u64) -> NewEvent {
    NewEvent::from_event(&Deposited { amount: n }).expect("json")
}

/// Appends one event per append to 100 streams in turn; events/s.
async fn append_single<S: EventStore>(store: &S, prefix: &str, count: u64) -> f64 {
    let mut versions = vec![0u64; 100];
    let start = Instant::now();
    for i in 0..count {
        let s = (i % 100) as usize;
        let expected = ExpectedVersion::Exact(versions[s]);
        versions[s] = store
            .append(&format!("{prefix}-{s}"), expected, vec![deposit(i)])
            .await
            .expect("append")
            .stream_version;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Appends batches of 100 events; events/s.
async fn append_batches<S: EventStore>(store: &S, prefix: &str, batches: u64) -> f64 {
    let start = Instant::now();
    for b in 0..batches {
        let events = (0..100).map(|i| deposit(b * 100 + i)).collect();
        store
            .append(&format!("{prefix}-{b}"), ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
    (batches * 100) as f64 / start.elapsed().as_secs_f64()
}

/// Median milliseconds to load an account with 1,000 events.
async fn load_thousand<S: EventStore>(store: &S, loads: usize) -> f64 {
    let opened = NewEvent::from_event(&Opened {
        owner: "bench".into(),
    })
    .expect("json");
    store
        .append("account-load", ExpectedVersion::NoStream, vec![opened])
        .await
        .expect("open");
    for b in 0..10u64 {
        let events = (0..100).map(|i| deposit(b * 100 + i)).collect();
        store
            .append("account-load", ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
    let mut reads = Vec::with_capacity(loads);
    for _ in 0..loads {
        let start = Instant::now();
        let records = store.read_stream("account-load", ..).await.expect("read");
        reads.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(records.len(), 1001);
    }
    eprintln!("read_stream of 1,001 records: {:.3} ms", median(reads));
    let accounts = Repository::<Account, _>::new(store.clone());
    let mut samples = Vec::with_capacity(loads);
    for _ in 0..loads {
        let start = Instant::now();
        let account = accounts.load("load").await.expect("load");
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(account.version(), 1001);
    }
    median(samples)
}

async fn measure_store<S: EventStore>(
    backend: &'static str,
    store: &S,
    sizes: &Sizes,
    rows: &mut Vec<Row>,
) {
    let single = append_single(store, "single", sizes.single).await;
    let batch = append_batches(store, "batch", sizes.batches).await;
    let load = load_thousand(store, sizes.loads).await;
    rows.push(Row {
        backend,
        measure: "append, batch of 1",
        annals: single,
        baseline: None,
        unit: "events/s",
    });
    rows.push(Row {
        backend,
        measure: "append, batch of 100",
        annals: batch,
        baseline: None,
        unit: "events/s",
    });
    rows.push(Row {
        backend,
        measure: "load 1,000 events",
        annals: load,
        baseline: None,
        unit: "ms",
    });
}

fn set_baselines(rows: &mut [Row], backend: &str, baselines: [f64; 3]) {
    for (row, baseline) in rows
        .iter_mut()
        .filter(|r| r.backend == backend)
        .zip(baselines)
    {
        row.baseline = Some(baseline);
    }
}

/// The same work by hand on SQLite: a plain table, one autocommit insert per event, a
/// multi-row insert per batch, and select-then-deserialise for a load.
async fn sqlite_baseline(dir: &TempDir, sizes: &Sizes) -> [f64; 3] {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("raw.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("connect");
    conn.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL, payload TEXT NOT NULL, UNIQUE (stream, version))")
        .await
        .expect("create");
    let payload = deposit(1).payload.get().to_owned();
    let start = Instant::now();
    for i in 0..sizes.single {
        sqlx::query("INSERT INTO raw (stream, version, payload) VALUES (?, ?, ?)")
            .bind(format!("s-{}", i % 100))
            .bind((i / 100 + 1) as i64)
            .bind(&payload)
            .execute(&mut conn)
            .await
            .expect("insert");
    }
    let single = sizes.single as f64 / start.elapsed().as_secs_f64();
    let values = vec!["(?, ?, ?)"; 100].join(", ");
    let sql = format!("INSERT INTO raw (stream, version, payload) VALUES {values}");
    let start = Instant::now();
    for b in 0..sizes.batches {
        let mut query = sqlx::query(&sql);
        for v in 1..=100i64 {
            query = query.bind(format!("b-{b}")).bind(v).bind(&payload);
        }
        query.execute(&mut conn).await.expect("insert batch");
    }
    let batch = (sizes.batches * 100) as f64 / start.elapsed().as_secs_f64();
    for b in 0..10i64 {
        let mut query = sqlx::query(&sql);
        for v in 1..=100i64 {
            query = query.bind("load").bind(b * 100 + v).bind(&payload);
        }
        query.execute(&mut conn).await.expect("insert load stream");
    }
    let load = raw_load(sizes.loads, async || {
        sqlx::query_scalar::<_, String>(
            "SELECT payload FROM raw WHERE stream = 'load' ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await
        .expect("select")
    })
    .await;
    [single, batch, load]
}

/// Selects rows and deserialises each payload, like a load; median ms.
async fn raw_load(loads: usize, mut select: impl AsyncFnMut() -> Vec<String>) -> f64 {
    let mut samples = Vec::with_capacity(loads);
    for _ in 0..loads {
        let start = Instant::now();
        let rows = select().await;
        assert_eq!(rows.len(), 1000, "the baseline loads 1,000 events");
        let total: u64 = rows
            .iter()
            .map(|p| serde_json::from_str::<Deposited>(p).expect("json").amount)
            .sum();
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(total);
    }
    median(samples)
}

/// The same work by hand on PostgreSQL, on one held connection.
async fn postgres_baseline(url: &str, schema: &str, sizes: &Sizes) -> [f64; 3] {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    conn.execute(
        format!(
            "CREATE TABLE \"{schema}\".raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream text NOT NULL, \
             version bigint NOT NULL, payload jsonb NOT NULL, UNIQUE (stream, version))"
        )
        .as_str(),
    )
    .await
    .expect("create");
    let payload = deposit(1).payload.get().to_owned();
    let insert = format!(
        "INSERT INTO \"{schema}\".raw (stream, version, payload) VALUES ($1, $2, $3::jsonb)"
    );
    let start = Instant::now();
    for i in 0..sizes.single {
        sqlx::query(&insert)
            .bind(format!("s-{}", i % 100))
            .bind((i / 100 + 1) as i64)
            .bind(&payload)
            .execute(&mut conn)
            .await
            .expect("insert");
    }
    let single = sizes.single as f64 / start.elapsed().as_secs_f64();
    let batch_sql = format!(
        "INSERT INTO \"{schema}\".raw (stream, version, payload) SELECT $1, v, p::jsonb FROM UNNEST($2::int8[], $3::text[]) AS t(v, p)"
    );
    let versions: Vec<i64> = (1..=100).collect();
    let payloads = vec![payload.clone(); 100];
    let start = Instant::now();
    for b in 0..sizes.batches {
        sqlx::query(&batch_sql)
            .bind(format!("b-{b}"))
            .bind(&versions)
            .bind(&payloads)
            .execute(&mut conn)
            .await
            .expect("batch");
    }
    let batch = (sizes.batches * 100) as f64 / start.elapsed().as_secs_f64();
    let thousand: Vec<i64> = (1..=1000).collect();
    let payloads = vec![payload.clone(); 1000];
    sqlx::query(&batch_sql)
        .bind("load")
        .bind(&thousand)
        .bind(&payloads)
        .execute(&mut conn)
        .await
        .expect("load stream");
    let select = format!(
        "SELECT payload::text FROM \"{schema}\".raw WHERE stream = 'load' ORDER BY version"
    );
    let load = raw_load(sizes.loads, async || {
        sqlx::query_scalar::<_, String>(&select)
            .fetch_all(&mut conn)
            .await
            .expect("select")
    })
    .await;
    [single, batch, load]
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            single: 500,
            batches: 20,
            loads: 11,
        }
    } else {
        Sizes {
            single: 3000,
            batches: 100,
            loads: 51,
        }
    };
    let mut rows = Vec::new();

    measure_store("memory", &MemoryStore::new(), &sizes, &mut rows).await;

    let dir = TempDir::new("annals-bench");
    let sqlite = SqliteStore::open(dir.path().join("events.db"))
        .await
        .expect("open sqlite");
    measure_store("sqlite", &sqlite, &sizes, &mut rows).await;
    let baselines = sqlite_baseline(&dir, &sizes).await;
    set_baselines(&mut rows, "sqlite", baselines);

    let url = annals_tests::database_url();
    let schema = format!("annals_bench_{}", uuid::Uuid::now_v7().simple());
    match PostgresStore::connect_with(PostgresOptions::new(&url).schema(&schema)).await {
        Ok(postgres) => {
            measure_store("postgres", &postgres, &sizes, &mut rows).await;
            let baselines = postgres_baseline(&url, &schema, &sizes).await;
            set_baselines(&mut rows, "postgres", baselines);
            let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
            let _ = postgres.pool().execute(drop.as_str()).await;
        }
        Err(e) => eprintln!("skipping PostgreSQL: {e}"),
    }

    println!(
        "\n{:<10} {:<22} {:>14} {:>14} {:>8}  unit",
        "backend", "measure", "annals", "raw sqlx", "ratio"
    );
    for r in &rows {
        let (baseline, ratio) = match r.baseline {
            // Ratio > 1 means annals does better than the hand-written baseline.
            Some(b) if r.unit == "ms" => (format!("{b:.3}"), format!("{:.2}", b / r.annals)),
            Some(b) => (format!("{b:.0}"), format!("{:.2}", r.annals / b)),
            None => ("-".into(), "-".into()),
        };
        let value = if r.unit == "ms" {
            format!("{:.3}", r.annals)
        } else {
            format!("{:.0}", r.annals)
        };
        println!(
            "{:<10} {:<22} {:>14} {:>14} {:>8}  {}",
            r.backend, r.measure, value, baseline, ratio, r.unit
        );
    }
    println!(
        "\nratio = annals / raw for events/s, raw / annals for ms: above 1 is better than the baseline"
    );
}
