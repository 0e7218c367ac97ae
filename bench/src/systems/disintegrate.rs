//! The peer `disintegrate` (with `disintegrate-postgres`): see `System` for the domain.
//!
//! Written the way the crate's README and its `banking` example do it: one `#[derive(Event)]`
//! enum whose events carry the account id as an `#[id]` domain identifier, one
//! `#[derive(StateQuery)]` state, one `Decision` per command, run by a `PgDecisionMaker`.
//!
//! What a command costs on this path (`DecisionMaker::make`):
//! - load: one `SELECT` of the state query's events (filtered on the indexed `account_id`
//!   column), bounded by `event_store_current_epoch()`, which scans `pg_locks` for in-flight
//!   writers; with snapshots, first one `SELECT` of the snapshot row and, when more than
//!   100 events were folded, one upsert of the snapshot afterwards;
//! - append: one SERIALIZABLE transaction: `SET TRANSACTION`, `event_store_begin_epoch()`
//!   (advisory locks), `SELECT EXISTS` of newer events matching the state query (the
//!   optimistic check), the `INSERT`, `COMMIT`.
//!
//! Disintegrate returns a concurrency error instead of retrying; its docs say a conflicted
//! decision is to be tried again, so `Peer` retries it, and says how often when dropped.
//! Conflicts are frequent even between different accounts: SERIALIZABLE predicate locks
//! from the check's scan of the `event_type` index cover every concurrent `Deposited` insert.
//! Reads may also miss recently committed events while older appends are in flight (see
//! `Peer::reads_lag`), so a refusal is checked again before it is reported.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use disintegrate::serde::json::Json;
use disintegrate::{
    Decision, DecisionError, Event, EventStore, NoSnapshot, StateMutate, StateQuery, StreamItem,
    StreamQuery,
};
use disintegrate_postgres::{
    PgDecisionMaker, PgEventId, PgEventStore, PgSnapshotter, WithPgSnapshot,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::system::{Catchup, Result, System, Variant};

/// Events between two snapshots of a state (`Variant::Snapshots`).
const SNAPSHOT_EVERY: u64 = 100;
/// Events per append when seeding.
const SEED_BATCH: usize = 1000;
/// How many times a decision is made before a conflict is reported as an error.
const MAX_ATTEMPTS: u32 = 100;

/// The account's events. `#[id]` makes `account_id` a domain identifier: disintegrate
/// stores it in its own indexed column of the `event` table and filters state queries on it.
#[derive(Debug, Clone, PartialEq, Eq, Event, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AccountEvent {
    /// The account was opened.
    Opened {
        /// The account.
        #[id]
        account_id: String,
        /// Who owns it.
        owner: String,
    },
    /// Money was paid in.
    Deposited {
        /// The account.
        #[id]
        account_id: String,
        /// How much.
        amount: u64,
    },
    /// Money was taken out (never recorded by the benchmark, but folded like the others).
    Withdrawn {
        /// The account.
        #[id]
        account_id: String,
        /// How much.
        amount: u64,
    },
}

/// The state every decision is made on: all events of one account, folded.
///
/// Serializable because the snapshotter stores it as JSON.
#[derive(Debug, Default, Clone, StateQuery, Serialize, Deserialize)]
#[state_query(AccountEvent)]
pub struct Account {
    /// The account the state query selects events for.
    #[id]
    account_id: String,
    /// Whether `Opened` was recorded.
    open: bool,
    /// Deposits minus withdrawals.
    balance: i64,
}

impl Account {
    /// The (still unfolded) state of account `account_id`.
    fn new(account_id: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
            ..Self::default()
        }
    }
}

impl StateMutate for Account {
    fn mutate(&mut self, event: Self::Event) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount, .. } => self.balance += amount as i64,
            AccountEvent::Withdrawn { amount, .. } => self.balance -= amount as i64,
        }
    }
}

/// Why a decision refused.
#[derive(Debug)]
pub enum AccountError {
    /// `Open` on an account that is open already.
    AlreadyOpen,
    /// `Deposit` on an account that was never opened.
    NotOpen,
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AlreadyOpen => "the account is already open",
            Self::NotOpen => "the account is not open",
        })
    }
}

impl std::error::Error for AccountError {}

/// The Open command: records `Opened` unless the account is open already.
#[derive(Clone)]
pub struct OpenAccount {
    /// The account to open.
    account_id: String,
    /// Its owner.
    owner: String,
}

impl Decision for OpenAccount {
    type Event = AccountEvent;
    type StateQuery = Account;
    type Error = AccountError;

    fn state_query(&self) -> Account {
        Account::new(&self.account_id)
    }

    fn process(&self, state: &Account) -> Result<Vec<AccountEvent>, AccountError> {
        if state.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened {
            account_id: self.account_id.clone(),
            owner: self.owner.clone(),
        }])
    }
}

/// The Deposit command: records one `Deposited` if the account is open.
///
/// No `validation_query`: as in the crate's banking example, the whole state query guards
/// the append, so a deposit conflicts with any event recorded on the account meanwhile.
#[derive(Clone)]
pub struct DepositMoney {
    /// The account to pay into.
    account_id: String,
    /// How much.
    amount: u64,
}

impl Decision for DepositMoney {
    type Event = AccountEvent;
    type StateQuery = Account;
    type Error = AccountError;

    fn state_query(&self) -> Account {
        Account::new(&self.account_id)
    }

    fn process(&self, state: &Account) -> Result<Vec<AccountEvent>, AccountError> {
        if !state.open {
            return Err(AccountError::NotOpen);
        }
        Ok(vec![AccountEvent::Deposited {
            account_id: self.account_id.clone(),
            amount: self.amount,
        }])
    }
}

/// The event store: events as JSON in the `event` table.
type Store = PgEventStore<AccountEvent, Json<AccountEvent>>;

/// The decision maker of either variant (the snapshot setting is part of its type).
enum Maker {
    /// Every decision folds the account's whole stream.
    Plain(PgDecisionMaker<AccountEvent, Json<AccountEvent>, NoSnapshot>),
    /// Decisions start from the state's latest snapshot (`PgSnapshotter`, `snapshot` table).
    Snapshots(PgDecisionMaker<AccountEvent, Json<AccountEvent>, WithPgSnapshot>),
}

/// The peer on PostgreSQL.
pub struct Peer {
    /// Used directly only by `seed` (plain append) and `catchup` (stream of all events).
    store: Store,
    /// Runs every command.
    maker: Maker,
    /// For `reads_lag`.
    pool: PgPool,
    /// Decisions made again after a concurrent append invalidated them (disintegrate's
    /// concurrency error, or PostgreSQL's serialization failure); reported on drop.
    conflicts: AtomicU64,
    /// Refused decisions made again because the read may have missed events; reported on
    /// drop.
    rechecks: AtomicU64,
}

impl Peer {
    /// Connects and recreates the peer's tables from scratch.
    pub async fn connect(url: &str, variant: Variant) -> Result<Self> {
        // The harness runs 8 tasks at once and a decision holds one connection at a time.
        // No ping before each checkout, as for every system of this benchmark: a decision
        // checks out a connection two to four times.
        let pool = PgPoolOptions::new()
            .min_connections(8)
            .max_connections(16)
            .test_before_acquire(false)
            .connect(url)
            .await?;
        drop_schema(&pool).await?;

        let serde = Json::<AccountEvent>::default();
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&pool)
            .await?;
        let store = if version >= 160_000 {
            // `try_new` runs the crate's `Migrator::init_event_store`: the sequence, the `event`
            // table, its functions, and one indexed column per domain identifier (`account_id`).
            PgEventStore::try_new(pool.clone(), serde).await?
        } else {
            // The migrator's `event_store_begin_epoch()` is written with a hexadecimal literal
            // that only PostgreSQL 16 parses; on older servers create the same schema here,
            // as `new_uninitialized` documents, with that one literal in decimal.
            init_event_store_pg15(&pool).await?;
            PgEventStore::new_uninitialized(pool.clone(), serde)
        };
        let maker = match variant {
            Variant::Plain => Maker::Plain(disintegrate_postgres::decision_maker(
                store.clone(),
                NoSnapshot,
            )),
            Variant::Snapshots => {
                // Creates the `snapshot` table.
                let snapshotter = PgSnapshotter::try_new(pool.clone(), SNAPSHOT_EVERY).await?;
                Maker::Snapshots(disintegrate_postgres::decision_maker(
                    store.clone(),
                    WithPgSnapshot::new(snapshotter),
                ))
            }
        };
        Ok(Self {
            store,
            maker,
            pool,
            conflicts: AtomicU64::new(0),
            rechecks: AtomicU64::new(0),
        })
    }

    /// Makes `decision` through `DecisionMaker::make`, again while it conflicts or while a
    /// refusal may rest on a stale read.
    async fn decide<D>(&self, decision: D) -> Result<()>
    where
        D: Decision<Event = AccountEvent, StateQuery = Account, Error = AccountError> + Clone,
    {
        let mut attempt = 1;
        // Whether the last attempt read while no append hid committed events: then its
        // refusal is final.
        let mut settled = false;
        loop {
            // `make` takes the decision by value; ours are two small fields.
            let outcome = match &self.maker {
                Maker::Plain(maker) => maker.make(decision.clone()).await.map(drop),
                Maker::Snapshots(maker) => maker.make(decision.clone()).await.map(drop),
            };
            let Err(error) = outcome else {
                return Ok(());
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(error.into());
            }
            if is_conflict(&error) {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
            } else if matches!(error, DecisionError::Domain(_)) && !settled {
                // The refusal may come from a stale read (see `reads_lag`): check it again.
                // If no append hides anything now, the next read sees every event committed
                // before this command began, so its answer is final.
                self.rechecks.fetch_add(1, Ordering::Relaxed);
                settled = !self.reads_lag().await?;
            } else {
                return Err(error.into());
            }
            backoff(attempt).await;
            attempt += 1;
        }
    }

    /// Whether reads currently stop short of the log. disintegrate-postgres 4.0.1 reads
    /// only up to its "epoch": the sequence position at which the oldest append still in
    /// flight began. Events committed after that position stay invisible until that append
    /// ends, even to the caller that committed them, so under concurrent appends a decision
    /// can be refused on a state missing the account's latest events (an account opened a
    /// moment ago reads as not open).
    async fn reads_lag(&self) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT event_store_current_epoch() < (SELECT COALESCE(MAX(event_id), 0) FROM event)",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Reports the retries when the harness is done with this configuration: they are part of
/// what the numbers measure.
impl Drop for Peer {
    fn drop(&mut self) {
        let conflicts = self.conflicts.load(Ordering::Relaxed);
        let rechecks = self.rechecks.load(Ordering::Relaxed);
        if conflicts + rechecks > 0 {
            eprintln!(
                "   (disintegrate: decisions made again: {conflicts} after a conflict, \
                 {rechecks} after a refusal on a possibly stale read)"
            );
        }
    }
}

/// Waits before attempt `attempt + 1`: not at all after the first conflict, then at random
/// up to 2^(attempt - 2) ms, capped at 32 ms, so that decisions that keep conflicting with
/// each other stop retrying in step.
async fn backoff(attempt: u32) {
    if attempt < 2 {
        return;
    }
    let ceiling_us = 1000u64 << (attempt - 2).min(5);
    // A fresh `RandomState` is randomly keyed: enough jitter without a dependency.
    let jitter = RandomState::new().build_hasher().finish() % ceiling_us;
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}

/// Drops what disintegrate-postgres 4 creates (event store, snapshotter, listener), so the
/// crate recreates it empty.
async fn drop_schema(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS event, snapshot, event_listener CASCADE; \
         DROP SEQUENCE IF EXISTS seq_event_event_id; \
         DROP FUNCTION IF EXISTS event_store_current_epoch(), event_store_begin_epoch(), \
           notify_event_listener() CASCADE;",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// What `Migrator::init_event_store` (disintegrate-postgres 4.0.1) creates, statement for
/// statement, except that `0xFFFFFFFF` is spelled `4294967295`: hexadecimal integer literals
/// are PostgreSQL 16 syntax.
async fn init_event_store_pg15(pool: &PgPool) -> Result<()> {
    const STATEMENTS: [&str; 7] = [
        "CREATE SEQUENCE IF NOT EXISTS seq_event_event_id",
        "CREATE TABLE IF NOT EXISTS event (
            event_id BIGINT PRIMARY KEY DEFAULT nextval('seq_event_event_id'),
            event_type VARCHAR(255),
            payload BYTEA,
            inserted_at TIMESTAMP DEFAULT now()
        )",
        "CREATE INDEX IF NOT EXISTS idx_event_type_btree ON event(event_type)",
        r#"CREATE OR REPLACE FUNCTION event_store_current_epoch()
        RETURNS BIGINT AS $$
        DECLARE
            persisted_event_id BIGINT;
            pending_event_id BIGINT;
            db_id INT;
        BEGIN
            SELECT COALESCE(MAX(event_id), 0) INTO persisted_event_id FROM event;
            SELECT oid INTO db_id FROM pg_database WHERE datname = current_database();

            SELECT MIN((l3.objid::bigint << 32) + l2.objid::bigint)
            INTO pending_event_id
            FROM pg_locks l1
            INNER JOIN pg_locks l2 ON l1.pid = l2.pid
            INNER JOIN pg_locks l3 ON l1.pid = l3.pid
            WHERE
                l1.classid = db_id
                AND l2.classid = 1
                AND l3.classid = 2
                AND l1.locktype = 'advisory';

            RETURN LEAST(COALESCE(pending_event_id, persisted_event_id), persisted_event_id);
        END;
        $$ LANGUAGE plpgsql"#,
        r#"CREATE OR REPLACE FUNCTION event_store_begin_epoch()
        RETURNS void AS $$
        DECLARE
            id BIGINT;
            db_id INT;
        BEGIN
            SELECT last_value INTO id FROM seq_event_event_id;
            SELECT oid INTO db_id FROM pg_database WHERE datname = current_database();

            PERFORM pg_try_advisory_xact_lock_shared(db_id, 0);
            PERFORM pg_try_advisory_xact_lock_shared(1, (id & 4294967295)::bit(32)::integer);
            PERFORM pg_try_advisory_xact_lock_shared(2, (id >> 32)::bit(32)::integer);
        END;
        $$ LANGUAGE plpgsql"#,
        // The domain identifier's column and index, as `add_domain_id_column` names them.
        "ALTER TABLE event ADD COLUMN IF NOT EXISTS account_id TEXT",
        "CREATE INDEX IF NOT EXISTS idx_event_account_id ON event (account_id) \
         WHERE account_id IS NOT NULL",
    ];
    for statement in STATEMENTS {
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

/// Whether a decision failed only because another append got in first: disintegrate's
/// `Concurrency` (newer matching events found, or 40001 at commit), or a serialization
/// failure PostgreSQL raised before the commit (which the crate passes on as a database error).
fn is_conflict(error: &DecisionError<AccountError>) -> bool {
    let DecisionError::StateStore(source) = error else {
        return false;
    };
    match source.downcast_ref::<disintegrate_postgres::Error>() {
        Some(disintegrate_postgres::Error::Concurrency) => true,
        Some(disintegrate_postgres::Error::Database(sqlx::Error::Database(db))) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

impl System for Peer {
    async fn open(&self, id: &str, owner: &str) -> Result<()> {
        self.decide(OpenAccount {
            account_id: id.to_owned(),
            owner: owner.to_owned(),
        })
        .await
    }

    async fn deposit(&self, id: &str, amount: u64) -> Result<()> {
        self.decide(DepositMoney {
            account_id: id.to_owned(),
            amount,
        })
        .await
    }

    async fn seed(&self, id: &str, deposits: usize) -> Result<()> {
        self.open(id, id).await?;
        // The deposits go through the event store's own batch append without the optimistic
        // check (`append_without_validation`, one multi-row INSERT per batch). Seeding through
        // a many-deposits decision would fold the whole, growing stream before every batch.
        let mut left = deposits;
        while left > 0 {
            let batch = left.min(SEED_BATCH);
            let events = (0..batch)
                .map(|_| AccountEvent::Deposited {
                    account_id: id.to_owned(),
                    amount: 1,
                })
                .collect();
            self.store.append_without_validation(events).await?;
            left -= batch;
        }
        Ok(())
    }

    async fn catchup(&self) -> Result<Catchup> {
        // Disintegrate builds read models with `PgEventListener`, but that is behind the
        // crate's `listener` feature (not enabled here) and polls forever rather than
        // returning once it has caught up. Its event store's own `stream` over a query for
        // every event type, with no identifier, replays the whole log in one streamed SELECT
        // in event order, deserialized by the crate: the same read a listener does.
        let everything: StreamQuery<PgEventId, AccountEvent> = disintegrate::query!(AccountEvent);
        let mut events = self.store.stream(&everything);
        let mut model = Catchup::default();
        while let Some(item) = events.try_next().await? {
            // `End` only reports the epoch the read stopped at.
            let StreamItem::Event(event) = item else {
                continue;
            };
            match event.into_inner() {
                AccountEvent::Opened { account_id, .. } => model.other(&account_id),
                AccountEvent::Deposited { account_id, amount } => {
                    model.deposit(&account_id, amount as i64)
                }
                AccountEvent::Withdrawn { account_id, amount } => {
                    model.deposit(&account_id, -(amount as i64))
                }
            }
        }
        Ok(model)
    }
}
