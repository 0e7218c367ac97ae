//! The two floors, hand-written in plain sqlx on held connections (a pool that never pings
//! and never shrinks, so a checkout is a local operation).
//!
//! - `sqlx-floor`: what a careful hand-written command costs: in one transaction, select
//!   the stream, fold it, insert the new event.
//! - `sqlx-insert`: one insert per transaction and no read at all: the commit latency of a
//!   durable write, the limit for a sequential client.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::system::{Catchup, Result, System, Variant};

/// The floor's events: the same JSON shapes as every other system's.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

async fn pool(url: &str) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .min_connections(8)
        .max_connections(16)
        .test_before_acquire(false)
        .connect(url)
        .await?)
}

/// Recreates `table`: (stream, version) is the key, as for every event store.
async fn recreate(pool: &PgPool, table: &str) -> Result<()> {
    sqlx::raw_sql(&format!(
        "DROP TABLE IF EXISTS {table}; \
         CREATE TABLE {table} (stream_id text NOT NULL, version bigint NOT NULL, \
           payload jsonb NOT NULL, PRIMARY KEY (stream_id, version))"
    ))
    .execute(pool)
    .await?;
    Ok(())
}

/// Writes an opened account and `deposits` deposits of 1 in batches of 1,000 rows.
async fn seed_into(pool: &PgPool, table: &str, id: &str, deposits: usize) -> Result<()> {
    let mut events = vec![serde_json::to_string(&AccountEvent::Opened {
        owner: id.into(),
    })?];
    events.extend((0..deposits).map(|_| r#"{"type":"Deposited","amount":1}"#.to_owned()));
    let sql = format!(
        "INSERT INTO {table} (stream_id, version, payload) \
         SELECT $1, $2 + n, e::jsonb FROM UNNEST($3::text[]) WITH ORDINALITY AS t(e, n)"
    );
    for (i, chunk) in events.chunks(1000).enumerate() {
        sqlx::query(&sql)
            .bind(id)
            .bind((i * 1000) as i64)
            .bind(chunk)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Reads every row of `table` in one streamed query and folds it.
async fn catchup_from(pool: &PgPool, table: &str) -> Result<Catchup> {
    let sql = format!("SELECT stream_id, payload FROM {table} ORDER BY stream_id, version");
    let mut rows = sqlx::query_as::<_, (String, Json<AccountEvent>)>(&sql).fetch(pool);
    let mut model = Catchup::default();
    while let Some((stream, Json(event))) = rows.try_next().await? {
        match event {
            AccountEvent::Opened { .. } => model.other(&stream),
            AccountEvent::Deposited { amount } => model.deposit(&stream, amount as i64),
            AccountEvent::Withdrawn { amount } => model.deposit(&stream, -(amount as i64)),
        }
    }
    Ok(model)
}

/// `sqlx-floor`: select, fold, insert, in one transaction.
pub struct Floor {
    pool: PgPool,
}

impl Floor {
    /// Connects and recreates the floor's table.
    pub async fn connect(url: &str, _variant: Variant) -> Result<Self> {
        let pool = pool(url).await?;
        recreate(&pool, "floor_events").await?;
        Ok(Self { pool })
    }
}

impl System for Floor {
    async fn open(&self, id: &str, owner: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM floor_events WHERE stream_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if version > 0 {
            return Err(format!("account {id} is already open").into());
        }
        sqlx::query("INSERT INTO floor_events (stream_id, version, payload) VALUES ($1, 1, $2)")
            .bind(id)
            .bind(Json(AccountEvent::Opened {
                owner: owner.into(),
            }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deposit(&self, id: &str, amount: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let events: Vec<Json<AccountEvent>> = sqlx::query_scalar(
            "SELECT payload FROM floor_events WHERE stream_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let (mut open, mut balance) = (false, 0i64);
        for Json(event) in &events {
            match event {
                AccountEvent::Opened { .. } => open = true,
                AccountEvent::Deposited { amount } => balance += *amount as i64,
                AccountEvent::Withdrawn { amount } => balance -= *amount as i64,
            }
        }
        if !open {
            return Err(format!("account {id} is not open").into());
        }
        std::hint::black_box(balance);
        sqlx::query("INSERT INTO floor_events (stream_id, version, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(events.len() as i64 + 1)
            .bind(Json(AccountEvent::Deposited { amount }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn seed(&self, id: &str, deposits: usize) -> Result<()> {
        seed_into(&self.pool, "floor_events", id, deposits).await
    }

    async fn catchup(&self) -> Result<Catchup> {
        catchup_from(&self.pool, "floor_events").await
    }

    const HOT_16: bool = true;

    /// The careful floor for a contended account: the stream's first row locked with
    /// `SELECT ... FOR UPDATE` before it is read, so concurrent deposits queue in the
    /// database and each reads the stream as the previous one left it.
    async fn hot_deposit(&self, id: &str, amount: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT 1 FROM floor_events WHERE stream_id = $1 AND version = 1 FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let events: Vec<Json<AccountEvent>> = sqlx::query_scalar(
            "SELECT payload FROM floor_events WHERE stream_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let (mut open, mut balance) = (false, 0i64);
        for Json(event) in &events {
            match event {
                AccountEvent::Opened { .. } => open = true,
                AccountEvent::Deposited { amount } => balance += *amount as i64,
                AccountEvent::Withdrawn { amount } => balance -= *amount as i64,
            }
        }
        if !open {
            return Err(format!("account {id} is not open").into());
        }
        std::hint::black_box(balance);
        sqlx::query("INSERT INTO floor_events (stream_id, version, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(events.len() as i64 + 1)
            .bind(Json(AccountEvent::Deposited { amount }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `sqlx-insert`: one autocommitted insert per command, no read; stream versions come
/// from a counter in memory.
pub struct Insert {
    pool: PgPool,
    versions: Mutex<HashMap<String, i64>>,
}

impl Insert {
    /// Connects and recreates the table.
    pub async fn connect(url: &str, _variant: Variant) -> Result<Self> {
        let pool = pool(url).await?;
        recreate(&pool, "insert_events").await?;
        Ok(Self {
            pool,
            versions: Mutex::default(),
        })
    }

    fn next_version(&self, id: &str) -> Result<i64> {
        let mut versions = self.versions.lock().map_err(|_| "poisoned")?;
        let v = versions.entry(id.to_owned()).or_default();
        *v += 1;
        Ok(*v)
    }

    async fn insert(&self, id: &str, event: AccountEvent) -> Result<()> {
        let version = self.next_version(id)?;
        sqlx::query("INSERT INTO insert_events (stream_id, version, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(version)
            .bind(Json(event))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl System for Insert {
    async fn open(&self, id: &str, owner: &str) -> Result<()> {
        self.insert(
            id,
            AccountEvent::Opened {
                owner: owner.into(),
            },
        )
        .await
    }

    async fn deposit(&self, id: &str, amount: u64) -> Result<()> {
        self.insert(id, AccountEvent::Deposited { amount }).await
    }

    async fn seed(&self, id: &str, deposits: usize) -> Result<()> {
        seed_into(&self.pool, "insert_events", id, deposits).await?;
        let mut versions = self.versions.lock().map_err(|_| "poisoned")?;
        versions.insert(id.to_owned(), deposits as i64 + 1);
        Ok(())
    }

    async fn catchup(&self) -> Result<Catchup> {
        catchup_from(&self.pool, "insert_events").await
    }
}
