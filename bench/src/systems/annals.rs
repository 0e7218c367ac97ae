//! annals itself, on PostgreSQL and on a SQLite file, through `Repository::execute`.

use annals::prelude::*;
use annals::{
    Checkpoint, EventStore, ExpectedVersion, NewEvent, PostgresOptions, PostgresStore, SqliteStore,
};

use crate::system::{Catchup, Result, System, Variant};

/// The schema holding annals' tables in the benchmark database.
const SCHEMA: &str = "bench_annals";
/// How many accounts the aggregate cache keeps, when it is on.
const CACHE: usize = 20_000;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct Opened {
    pub owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct Withdrawn {
    pub amount: u64,
}

pub struct Open {
    pub owner: String,
}

pub struct Deposit {
    pub amount: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
}

/// Defines an account aggregate; the two differ only in their snapshot setting.
macro_rules! account {
    ($name:ident, [$($args:tt)*] $(, $derive:ident)?) => {
        #[derive(Debug, Default, Serialize, Deserialize $(, $derive)?)]
        pub struct $name {
            open: bool,
            balance: i64,
        }

        #[aggregate($($args)*)]
        impl $name {
            #[command(create)]
            fn open(&self, cmd: &Open) -> Result<Opened, AccountError> {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                Ok(Opened { owner: cmd.owner.clone() })
            }

            #[command]
            fn deposit(&self, cmd: &Deposit) -> Result<Deposited, AccountError> {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                Ok(Deposited { amount: cmd.amount })
            }

            #[apply]
            fn opened(&mut self, _: &Opened) {
                self.open = true;
            }

            #[apply]
            fn deposited(&mut self, e: &Deposited) {
                self.balance += e.amount as i64;
            }

            #[apply]
            fn withdrawn(&mut self, e: &Withdrawn) {
                self.balance -= e.amount as i64;
            }
        }
    };
}

account!(Account, [category = "account", event_enum = AccountEvent]);
account!(
    SnapAccount,
    [
        category = "account",
        event_enum = SnapAccountEvent,
        snapshot_every = 100
    ],
    Snapshot
);

/// annals on one store. `Variant::Plain` replays every stream on every command unless the
/// aggregate cache is asked for (as a service would configure it); `Variant::Snapshots`
/// uses an aggregate that takes snapshots, and the cache.
pub struct Annals<S: EventStore> {
    store: S,
    plain: Repository<Account, S>,
    snap: Repository<SnapAccount, S>,
    variant: Variant,
    /// PostgreSQL only: the connection of the raw read `catchup` is held against.
    raw: Option<sqlx::PgPool>,
    /// Attempts beyond the first, over every command: the conflicts retried.
    retried: std::sync::atomic::AtomicU64,
}

impl<S: EventStore> Annals<S> {
    fn new(store: S, variant: Variant, cache: bool) -> Self {
        let cache = if cache || variant == Variant::Snapshots {
            CACHE
        } else {
            0
        };
        Self {
            plain: Repository::new(store.clone()).with_cache(cache),
            snap: Repository::new(store.clone()).with_cache(cache),
            store,
            variant,
            raw: None,
            retried: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl<S: EventStore> Annals<S> {
    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// A deposit through the repository; where its event is in the global order.
    pub async fn deposit_at(&self, id: &str, amount: u64) -> Result<Option<Checkpoint>> {
        Ok(self
            .plain
            .execute(id, Deposit { amount })
            .await?
            .last_checkpoint)
    }
}

impl<S: annals::projection::ProjectionStore> Annals<S> {
    /// The same system on a store that applies projection `P` inline, in every append.
    pub async fn inline<P: annals::projection::DocumentProjection>(
        self,
        cache: bool,
    ) -> Result<Self> {
        let store = self.store.clone().inline::<P>().await?;
        Ok(Self {
            raw: self.raw.clone(),
            ..Self::new(store, self.variant, cache)
        })
    }
}

impl Annals<PostgresStore> {
    /// Connects to PostgreSQL and recreates annals' schema.
    pub async fn postgres(url: &str, variant: Variant, cache: bool) -> Result<Self> {
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let store = PostgresStore::connect_with(
            PostgresOptions::new(url).schema(SCHEMA).max_connections(16),
        )
        .await?;
        // The plan annals' own connections get (the key's order, never a sort), set once
        // per connection so that no timed read pays for it; no ping on checkout.
        let raw_options = url.parse::<sqlx::postgres::PgConnectOptions>()?.options([
            ("enable_seqscan", "off"),
            ("enable_bitmapscan", "off"),
            ("enable_sort", "off"),
        ]);
        let raw = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_lazy_with(raw_options);
        Ok(Self {
            raw: Some(raw),
            ..Self::new(store, variant, cache)
        })
    }
}

impl Annals<PostgresStore> {
    /// The baseline for catch-up: hand-written sqlx reading annals' own rows in global
    /// order, deserialising each payload by event name, folding into the same model.
    pub async fn raw_catchup(&self) -> Result<Catchup> {
        use futures::TryStreamExt;
        let sql = format!(
            "SELECT stream_id, event_name, payload::text FROM {SCHEMA}.annals_events \
             ORDER BY transaction_id, position"
        );
        let pool = self.raw.as_ref().ok_or("no raw read on this store")?;
        let mut conn = pool.acquire().await?;
        let mut rows = sqlx::query_as::<_, (String, String, String)>(&sql).fetch(&mut *conn);
        let mut model = Catchup::default();
        while let Some((stream, name, payload)) = rows.try_next().await? {
            fold_raw(&mut model, &stream, &name, &payload)?;
        }
        Ok(model)
    }

    /// A second baseline: what a hand-written catch-up must read to do what annals' does
    /// (resume from a checkpoint, never skip a transaction still running, upcast by event
    /// version, hand out stream versions): annals' seven columns, in its pages and order,
    /// read with sqlx without its type checks, as annals reads them.
    pub async fn raw_resumable_catchup(&self) -> Result<Catchup> {
        use futures::TryStreamExt;
        use sqlx::Row;
        const PAGE: i64 = 65_536;
        let sql = format!(
            "SELECT stream_version, position, event_name, event_version, payload, stream_id, \
               transaction_id FROM {SCHEMA}.annals_events \
             WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
               AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
             ORDER BY transaction_id, position LIMIT $3"
        );
        let pool = self.raw.as_ref().ok_or("no raw read on this store")?;
        let mut conn = pool.acquire().await?;
        let (mut transaction, mut position) = (0_i64, 0_i64);
        let mut model = Catchup::default();
        loop {
            let mut rows = sqlx::query(&sql)
                .bind(transaction)
                .bind(position)
                .bind(PAGE)
                .fetch(&mut *conn);
            let mut read = 0;
            while let Some(row) = rows.try_next().await? {
                let _stream_version: i64 = row.try_get_unchecked(0)?;
                position = row.try_get_unchecked(1)?;
                let name: &str = row.try_get_unchecked(2)?;
                let version: i32 = row.try_get_unchecked(3)?;
                let payload: &str = row.try_get_unchecked(4)?;
                let stream: &str = row.try_get_unchecked(5)?;
                transaction = row.try_get_unchecked(6)?;
                if version != 1 {
                    return Err(format!("no upcaster for {name} version {version}").into());
                }
                fold_raw(&mut model, stream, name, payload)?;
                read += 1;
            }
            if read < PAGE {
                return Ok(model);
            }
        }
    }
}

/// Deserialises one stored event by its name and folds it into `model`.
fn fold_raw(model: &mut Catchup, stream: &str, name: &str, payload: &str) -> Result<()> {
    let account = stream.strip_prefix("account-").unwrap_or(stream);
    match name {
        "Opened" => {
            let _: Opened = serde_json::from_str(payload)?;
            model.other(account);
        }
        "Deposited" => {
            let e: Deposited = serde_json::from_str(payload)?;
            model.deposit(account, e.amount as i64);
        }
        "Withdrawn" => {
            let e: Withdrawn = serde_json::from_str(payload)?;
            model.deposit(account, -(e.amount as i64));
        }
        other => return Err(format!("unknown event {other}").into()),
    }
    Ok(())
}

impl Annals<SqliteStore> {
    /// Opens a new SQLite file at `path` (deleting an old one).
    pub async fn sqlite(path: &std::path::Path, variant: Variant, cache: bool) -> Result<Self> {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(Self::new(SqliteStore::open(path).await?, variant, cache))
    }
}

impl<S: EventStore> System for Annals<S> {
    async fn open(&self, id: &str, owner: &str) -> Result<()> {
        let cmd = Open {
            owner: owner.to_owned(),
        };
        match self.variant {
            Variant::Plain => self.plain.execute(id, cmd).await.map(drop)?,
            Variant::Snapshots => self.snap.execute(id, cmd).await.map(drop)?,
        }
        Ok(())
    }

    async fn deposit(&self, id: &str, amount: u64) -> Result<()> {
        let cmd = Deposit { amount };
        let attempts = match self.variant {
            Variant::Plain => self.plain.execute(id, cmd).await?.attempts,
            Variant::Snapshots => self.snap.execute(id, cmd).await?.attempts,
        };
        self.retried.fetch_add(
            u64::from(attempts - 1),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    async fn seed(&self, id: &str, deposits: usize) -> Result<()> {
        let stream = <Account as annals::Aggregate>::stream_id(id);
        let mut events = vec![NewEvent::from_event(&Opened {
            owner: id.to_owned(),
        })?];
        for _ in 0..deposits {
            events.push(NewEvent::from_event(&Deposited { amount: 1 })?);
        }
        let mut version = 0;
        while !events.is_empty() {
            let rest = events.split_off(events.len().min(1000));
            let batch = std::mem::replace(&mut events, rest);
            let n = batch.len() as u64;
            self.store
                .append(&stream, ExpectedVersion::Exact(version), batch)
                .await?;
            version += n;
        }
        Ok(())
    }

    async fn catchup(&self) -> Result<Catchup> {
        // The catch-up half of a subscription: every event readable now, in global order,
        // through borrowed rows; a projection rebuild goes this way before going live.
        let mut model = Catchup::default();
        self.store
            .catch_up(Checkpoint::START, |_, event| {
                let account = event
                    .stream_id
                    .strip_prefix("account-")
                    .unwrap_or(event.stream_id);
                match event.decode::<AccountEvent>()? {
                    AccountEvent::Opened(_) => model.other(account),
                    AccountEvent::Deposited(e) => model.deposit(account, e.amount as i64),
                    AccountEvent::Withdrawn(e) => model.deposit(account, -(e.amount as i64)),
                }
                Ok::<_, crate::system::BoxError>(())
            })
            .await?;
        Ok(model)
    }

    /// `Repository::execute`, as for every command: within one repository commands on an
    /// aggregate take turns, so the tasks queue instead of conflicting.
    const HOT_16: bool = true;

    fn retried(&self) -> u64 {
        self.retried.load(std::sync::atomic::Ordering::Relaxed)
    }
}
