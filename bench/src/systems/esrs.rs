//! The peer `esrs` (Prima's `event_sourcing.rs`, 0.18, `postgres` feature): see `System` for
//! the domain.
//!
//! Written the way the crate's README and examples use it: an [`Aggregate`] with a
//! synchronous `handle_command`/`apply_event`, a [`PgStore`] built by [`PgStoreBuilder`] (whose
//! `try_build` runs the crate's migrations), and an [`AggregateManager`] driving every command
//! through `lock_and_load` then `handle_command` (which persists in one transaction).
//!
//! What a command costs, all of it the crate's own doing:
//! - `lock_and_load` takes a pooled connection and blocks on `pg_advisory_lock` keyed by the
//!   aggregate id (esrs has no retry on a write conflict, so its documented way to serialise
//!   concurrent writers of one aggregate is this pessimistic lock), then reads the whole stream
//!   (`SELECT * ... WHERE aggregate_id = $1 ORDER BY sequence_number`) on a second connection;
//! - `handle_command` runs the aggregate, then `PgStore::persist` opens a transaction, issues one
//!   `INSERT` per event and commits, and finally drops the lock (sqlx queues the
//!   `pg_advisory_unlock`, sent with the ping that returns the connection to the pool).
//!
//! Snapshots: esrs 0.18 has none (no snapshot table, option or trait; the store always replays
//! the full stream), so [`Variant::Snapshots`] behaves exactly like [`Variant::Plain`].
//!
//! Aggregate ids are [`Uuid`]s in esrs; an account's string id is hashed into a deterministic
//! one (see [`account_uuid`]), and catch-up keys balances by that uuid's string form.

use std::fmt;

use esrs::manager::AggregateManager;
use esrs::store::EventStore;
use esrs::store::postgres::{PgStore, PgStoreBuilder};
use esrs::{Aggregate, AggregateState};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::{Builder, Uuid};

use crate::system::{Catchup, Result, System, Variant};

/// Pool size, the same as every other system's. It also suits esrs: a command in flight holds
/// two connections (one parked on the advisory lock, one for the load and the persisting
/// transaction), and the harness runs 8 tasks at once, so commands never queue on the pool.
const POOL_SIZE: u32 = 16;

/// Events per seeding batch: one `persist` call, hence one transaction, per batch.
const SEED_BATCH: usize = 1000;

/// The Account aggregate type; its state lives in [`AccountState`].
pub struct Account;

/// What an account can be asked to do.
#[derive(Debug)]
pub enum AccountCommand {
    /// Opens the account; refused if it is already open.
    Open {
        /// Who owns the account.
        owner: String,
    },
    /// Records one deposit; refused unless the account is open.
    Deposit {
        /// Amount deposited.
        amount: u64,
    },
    /// Seeding only: records `count` deposits of `amount` at once, so that one command (one
    /// transaction) writes a whole batch; refused unless the account is open.
    DepositMany {
        /// How many `Deposited` events to record.
        count: usize,
        /// Amount of each deposit.
        amount: u64,
    },
}

/// What happened to an account; stored by esrs as JSON in the `payload` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened.
    Opened {
        /// Who owns the account.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// Amount deposited.
        amount: u64,
    },
    /// Money went out. No command here records it, but it is part of the shared domain, so
    /// replay and catch-up handle it.
    Withdrawn {
        /// Amount withdrawn.
        amount: u64,
    },
}

/// The state commands are decided on, folded from the account's events.
#[derive(Debug, Default)]
pub struct AccountState {
    /// Whether `Opened` has been recorded.
    pub open: bool,
    /// Deposits minus withdrawals.
    pub balance: i64,
}

/// Why an account refused a command.
#[derive(Debug)]
pub enum AccountError {
    /// `Open` on an account that is already open.
    AlreadyOpen,
    /// A deposit on an account that was never opened.
    NotOpen,
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyOpen => f.write_str("account is already open"),
            Self::NotOpen => f.write_str("account is not open"),
        }
    }
}

impl std::error::Error for AccountError {}

impl Aggregate for Account {
    /// esrs names the table `{NAME}_events`; the prefix keeps it apart from the other
    /// systems' tables should they ever share a database.
    const NAME: &'static str = "esrs_account";
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle_command(
        state: &Self::State,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            AccountCommand::Open { .. } if state.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened { owner }]),
            AccountCommand::Deposit { .. } | AccountCommand::DepositMany { .. } if !state.open => {
                Err(AccountError::NotOpen)
            }
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
            AccountCommand::DepositMany { count, amount } => Ok((0..count)
                .map(|_| AccountEvent::Deposited { amount })
                .collect()),
        }
    }

    fn apply_event(state: Self::State, payload: Self::Event) -> Self::State {
        // Saturating rather than panicking: `apply_event` is infallible in esrs, and no amount
        // in this benchmark comes near the bounds.
        match payload {
            AccountEvent::Opened { .. } => AccountState {
                open: true,
                ..state
            },
            AccountEvent::Deposited { amount } => AccountState {
                balance: state.balance.saturating_add_unsigned(amount),
                ..state
            },
            AccountEvent::Withdrawn { amount } => AccountState {
                balance: state.balance.saturating_sub_unsigned(amount),
                ..state
            },
        }
    }
}

/// The deterministic aggregate id of account `id`.
///
/// esrs wants a [`Uuid`] and this build of `uuid` has no name-based (v5) constructor, so the
/// string is hashed with two 64-bit FNV-1a passes from different offset bases into a version 8
/// ("custom") uuid. Pure, so no shared id map is needed across tasks. The first hash lands in
/// the high half, which is what esrs keys its advisory lock on.
pub fn account_uuid(id: &str) -> Uuid {
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let fnv1a = |basis: u64| {
        id.bytes().fold(basis, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
        })
    };
    let high = fnv1a(0xcbf2_9ce4_8422_2325); // the standard FNV-1a 64 offset basis
    let low = fnv1a(0x6c62_272e_07bb_0142); // a second, unrelated basis
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    Builder::from_custom_bytes(bytes).into_uuid()
}

/// The peer on PostgreSQL.
pub struct Peer {
    /// The crate's command bus: lock, load, handle, persist.
    manager: AggregateManager<PgStore<Account>>,
    /// The same store (a cheap `Arc` clone): seeding appends through `EventStore::persist`
    /// and catch-up replays through `PgStore::stream_events`.
    store: PgStore<Account>,
    /// The pool the store uses; `stream_events` takes an executor.
    pool: PgPool,
}

impl Peer {
    /// Connects, drops esrs's table for [`Account`] and lets `PgStoreBuilder::try_build` run the
    /// crate's migrations to create it again (table, indexes, unique `(aggregate_id,
    /// sequence_number)`).
    ///
    /// `variant` changes nothing: esrs 0.18 has no snapshots (see the module docs).
    pub async fn connect(url: &str, variant: Variant) -> Result<Self> {
        match variant {
            Variant::Plain | Variant::Snapshots => {}
        }
        // esrs takes a ready pool and leaves its configuration to the user, so this is the
        // one every system here gets: same size, connections held open, no ping on each
        // checkout (sqlx's default), so the comparison measures the crate, not pool settings.
        let pool = PgPoolOptions::new()
            .min_connections(8)
            .max_connections(POOL_SIZE)
            .test_before_acquire(false)
            .connect(url)
            .await?;
        // The table name convention is esrs's documented one: `{Aggregate::NAME}_events`.
        sqlx::query(&format!("DROP TABLE IF EXISTS {}_events", Account::NAME))
            .execute(&pool)
            .await?;
        let store: PgStore<Account> = PgStoreBuilder::new(pool.clone()).try_build().await?;
        Ok(Self {
            manager: AggregateManager::new(store.clone()),
            store,
            pool,
        })
    }

    /// One command through the crate's normal path: `lock_and_load` (an unknown id yields a
    /// fresh state for that id, still under the lock), then `handle_command`, which decides,
    /// persists in one transaction and releases the lock.
    async fn execute(&self, id: &str, command: AccountCommand) -> Result<()> {
        let state = self
            .manager
            .lock_and_load(account_uuid(id))
            .await?
            .unwrap_or_default();
        // Outer `?`: the store failed; inner `?`: the account refused the command.
        self.manager.handle_command(state, command).await??;
        Ok(())
    }

    /// Decides `command` on `state` and persists the outcome through `EventStore::persist`,
    /// exactly as `AggregateManager::handle_command` does, but hands back the whole
    /// [`AggregateState`] (the manager returns only the inner state and drops the sequence
    /// number), so seeding loads the stream once instead of once per batch.
    async fn record(
        &self,
        mut state: AggregateState<AccountState>,
        command: AccountCommand,
    ) -> Result<AggregateState<AccountState>> {
        let events = Account::handle_command(state.inner(), command)?;
        let stored = self.store.persist(&mut state, events).await?;
        Ok(state.apply_store_events(stored, Account::apply_event))
    }
}

impl System for Peer {
    async fn open(&self, id: &str, owner: &str) -> Result<()> {
        self.execute(
            id,
            AccountCommand::Open {
                owner: owner.to_owned(),
            },
        )
        .await
    }

    async fn deposit(&self, id: &str, amount: u64) -> Result<()> {
        self.execute(id, AccountCommand::Deposit { amount }).await
    }

    async fn seed(&self, id: &str, deposits: usize) -> Result<()> {
        // Load (under the lock) once; `persist` releases the lock after its first commit,
        // which is fine since nothing else writes this account while it is being seeded.
        let state = self
            .manager
            .lock_and_load(account_uuid(id))
            .await?
            .unwrap_or_default();
        let mut state = self
            .record(
                state,
                AccountCommand::Open {
                    owner: id.to_owned(),
                },
            )
            .await?;
        let mut remaining = deposits;
        while remaining > 0 {
            let count = remaining.min(SEED_BATCH);
            state = self
                .record(state, AccountCommand::DepositMany { count, amount: 1 })
                .await?;
            remaining -= count;
        }
        Ok(())
    }

    async fn catchup(&self) -> Result<Catchup> {
        // `stream_events` is esrs's "replay the whole table to rebuild read models" path
        // (`SELECT * ... ORDER BY occurred_on, sequence_number`, streamed, each payload
        // deserialized into `AccountEvent`); its `Rebuilder` sits behind a feature this build
        // does not enable and does the same read.
        let mut catchup = Catchup::default();
        let mut events = self.store.stream_events(&self.pool);
        let mut buffer = Uuid::encode_buffer();
        while let Some(event) = events.try_next().await? {
            // Formatted on the stack: `Catchup` copies the key only for a new account.
            let account: &str = event.aggregate_id.hyphenated().encode_lower(&mut buffer);
            match event.payload {
                AccountEvent::Opened { .. } => catchup.other(account),
                AccountEvent::Deposited { amount } => {
                    catchup.deposit(account, i64::try_from(amount)?)
                }
                AccountEvent::Withdrawn { amount } => {
                    catchup.deposit(account, -i64::try_from(amount)?)
                }
            }
        }
        Ok(catchup)
    }
}

/// The balance read model as an esrs `EventHandler`, the way its examples write one: each
/// event updates its row in the read model's table.
struct BalanceReadModel {
    pool: PgPool,
    /// The first failure: a handler returns nothing, so failures are kept for the end.
    failure: std::sync::Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl esrs::handler::EventHandler<Account> for BalanceReadModel {
    async fn handle(&self, event: &esrs::store::StoreEvent<AccountEvent>) {
        let delta = match event.payload {
            AccountEvent::Opened { .. } => 0,
            AccountEvent::Deposited { amount } => amount as i64,
            AccountEvent::Withdrawn { amount } => -(amount as i64),
        };
        let done = sqlx::query(
            "INSERT INTO esrs_balances (account, balance) VALUES ($1, $2) \
             ON CONFLICT (account) DO UPDATE SET balance = esrs_balances.balance + excluded.balance",
        )
        .bind(event.aggregate_id)
        .bind(delta)
        .execute(&self.pool)
        .await;
        if let Err(e) = done {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert(e.to_string());
        }
    }
}

impl Peer {
    /// `proj_doc`: esrs' rebuild of a read model: every stored event streamed
    /// (`stream_events`) and handed to the `EventHandler`, one row update per event;
    /// events/s, checked against `accounts` rows of balance 9.
    pub async fn proj_doc(&self, accounts: usize) -> Result<f64> {
        use esrs::handler::EventHandler;
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS esrs_balances; \
             CREATE TABLE esrs_balances (account uuid PRIMARY KEY, balance bigint NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let model = BalanceReadModel {
            pool: self.pool.clone(),
            failure: std::sync::Mutex::new(None),
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let start = std::time::Instant::now();
        let mut events = self.store.stream_events(&self.pool);
        let mut seen = 0;
        while let Some(event) = events.try_next().await? {
            model.handle(&event).await;
            seen += 1;
        }
        let rate = seen as f64 / start.elapsed().as_secs_f64();
        if let Some(failure) = model
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(failure.into());
        }
        let (rows, nines): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE balance = 9) FROM esrs_balances",
        )
        .fetch_one(&self.pool)
        .await?;
        if rows != accounts as i64 || nines != rows || seen != accounts * 10 {
            return Err(format!(
                "{seen} events, {rows} rows ({nines} of 9) for {accounts} accounts"
            )
            .into());
        }
        Ok(rate)
    }
}
