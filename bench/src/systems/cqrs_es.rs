//! The peer `cqrs-es` (0.5) on `postgres-es` (0.5): see `System` for the domain.
//!
//! Written the way the crates document it: an `Aggregate` whose `handle` writes events into
//! the `EventSink`, a `CqrsFramework` built by `postgres_es::postgres_cqrs` (or
//! `postgres_snapshot_cqrs` for the snapshot variant), every command through
//! `CqrsFramework::execute`, and catch-up through `QueryReplay::replay_all`, the crate's
//! replay of every stored event into a `Query`.
//!
//! What one command costs with this crate (read from postgres-es 0.5's source):
//! - `Plain`: one `SELECT` of the whole stream on one pooled connection, then on another
//!   checkout `BEGIN`, one `INSERT` per event, `COMMIT`. The read is outside the write
//!   transaction; concurrent writers are caught by the primary key (optimistic lock).
//! - `Snapshots`: a `SELECT` of the snapshot row, a `SELECT` of the events after it, then the
//!   same write transaction, plus an `INSERT`/`UPDATE` of the snapshot row whenever the
//!   commit crosses a multiple of the snapshot size.
//!
//! Known crate behaviour that does not change what is measured here:
//! - In 0.5, `EventSink::write` applies each event to the aggregate in `handle`, and the
//!   snapshot store applies the same events again before serializing the snapshot, so a
//!   stored snapshot's `balance` counts the events of the snapshotting commit twice. The
//!   Deposit command only checks `open`, and catch-up reads events, not snapshots.
//! - Replay (`stream_all_events`) is one `SELECT ... WHERE aggregate_type = $1 ORDER BY
//!   sequence` (a sort of the whole table: there is no global position), streamed through
//!   a channel by a spawned task that panics on a database error, which ends the stream
//!   early rather than reporting it. One `SELECT` reads one snapshot of the table, so every
//!   event is seen exactly once.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistenceError, QueryReplay};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, Query};
use postgres_es::{PostgresCqrs, PostgresEventRepository, postgres_cqrs, postgres_snapshot_cqrs};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::system::{Catchup, Result, System, Variant};

/// Events per snapshot in the `Snapshots` variant: the size used in cqrs-es's own
/// documentation of `PersistedEventStore::new_snapshot_store`.
const SNAPSHOT_SIZE: usize = 100;

/// Deposits recorded by one seeding command: one commit (one transaction) per chunk.
const SEED_CHUNK: usize = 1000;

/// The tables postgres-es expects, as shipped in its `db/init.sql` (the view table there is
/// only for `PostgresViewRepository`, which this benchmark does not use). The crate does
/// not create tables itself.
const SCHEMA: &str = "
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS snapshots;
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
";

/// The Account's events. Internally tagged so the stored payload has the same JSON shape
/// as every other system's (`{"type":"Deposited","amount":1}`); cqrs-es accepts any serde
/// representation and keeps the type name in its own `event_type` column as well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AccountEvent {
    /// The account was opened for `owner`.
    Opened {
        /// Who owns the account.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// How much.
        amount: u64,
    },
    /// Money went out (never produced by the benchmark, but part of the shared domain).
    Withdrawn {
        /// How much.
        amount: u64,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Opened { .. } => "Opened",
            Self::Deposited { .. } => "Deposited",
            Self::Withdrawn { .. } => "Withdrawn",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        // The crate's convention (its demo and docs): a semantic version per event type,
        // which its upcasters key on.
        "1.0".to_owned()
    }
}

/// The Account's commands.
#[derive(Debug)]
pub enum AccountCommand {
    /// Open the account; refused if it is already open.
    Open {
        /// Who owns the account.
        owner: String,
    },
    /// Record one deposit; refused unless the account is open.
    Deposit {
        /// How much.
        amount: u64,
    },
    /// Seeding only: record `count` deposits of 1 in one command (one commit).
    DepositMany {
        /// How many deposits.
        count: usize,
    },
}

/// Why the Account refused a command.
#[derive(Debug)]
pub struct AccountError(String);

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccountError {}

/// The Account aggregate: serializable because the snapshot variant stores it as JSON.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    /// Whether `Opened` has been recorded.
    open: bool,
    /// Deposits minus withdrawals.
    balance: i64,
}

impl Account {
    /// Refuses commands on an account that is not open.
    fn require_open(&self) -> Result<(), AccountError> {
        if self.open {
            Ok(())
        } else {
            Err(AccountError("account is not open".to_owned()))
        }
    }
}

impl Aggregate for Account {
    // cqrs-es keys streams by (aggregate type, aggregate id); its demo names the type in
    // lower case.
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            AccountCommand::Open { owner } => {
                if self.open {
                    return Err(AccountError("account is already open".to_owned()));
                }
                sink.write(AccountEvent::Opened { owner }, self).await;
            }
            AccountCommand::Deposit { amount } => {
                self.require_open()?;
                sink.write(AccountEvent::Deposited { amount }, self).await;
            }
            AccountCommand::DepositMany { count } => {
                self.require_open()?;
                for _ in 0..count {
                    sink.write(AccountEvent::Deposited { amount: 1 }, self)
                        .await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        // `apply` cannot fail, so amounts beyond i64 saturate instead of wrapping.
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => {
                self.balance = self.balance.saturating_add_unsigned(amount);
            }
            AccountEvent::Withdrawn { amount } => {
                self.balance = self.balance.saturating_sub_unsigned(amount);
            }
        }
    }
}

/// The catch-up model as a cqrs-es `Query`: `QueryReplay` dispatches every replayed event
/// to it. `dispatch` returns nothing, so failures are kept and reported after the replay.
/// Cloning shares the model: `QueryReplay` owns its query and never gives it back, so the
/// replay gets one handle and `catchup` keeps another to read the result.
#[derive(Clone, Default)]
struct BalanceFold {
    /// The model, and the first failure seen during the replay.
    state: Arc<Mutex<(Catchup, Option<String>)>>,
}

impl BalanceFold {
    /// Records a failure; only the first is kept.
    fn fail(&self, message: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1.get_or_insert(message);
    }

    /// The model, or the first failure seen.
    fn finish(&self) -> Result<Catchup> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.1.take() {
            Some(message) => Err(message.into()),
            None => Ok(std::mem::take(&mut state.0)),
        }
    }
}

#[async_trait]
impl Query<Account> for BalanceFold {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<Account>]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (model, failure) = &mut *state;
        for envelope in events {
            let amount = match &envelope.payload {
                AccountEvent::Opened { .. } => {
                    model.other(aggregate_id);
                    continue;
                }
                AccountEvent::Deposited { amount } => i64::try_from(*amount),
                AccountEvent::Withdrawn { amount } => i64::try_from(*amount).map(|a| -a),
            };
            match amount {
                Ok(amount) => model.deposit(aggregate_id, amount),
                Err(e) => {
                    failure.get_or_insert(format!("{aggregate_id}: amount out of range: {e}"));
                }
            }
        }
    }
}

/// The peer on PostgreSQL: a `CqrsFramework` over `PostgresEventRepository`.
pub struct Peer {
    /// The command path.
    cqrs: PostgresCqrs<Account>,
    /// Shared with `cqrs`; catch-up builds its own repository on it for `QueryReplay`,
    /// which takes the repository by value.
    pool: PgPool,
}

impl Peer {
    /// Connects, drops and recreates postgres-es's `events` and `snapshots` tables, and
    /// builds the framework: `Variant::Snapshots` uses the crate's snapshot store with a
    /// snapshot every [`SNAPSHOT_SIZE`] events.
    pub async fn connect(url: &str, variant: Variant) -> Result<Self> {
        // The crate's `default_postgress_pool` is a 10-connection pool that panics when it
        // cannot connect and pings every connection it hands out. The pool is the user's to
        // configure, so this one is the floor's: same size, held connections, no ping per
        // checkout, so the comparison measures the crate and not pool settings.
        let pool = PgPoolOptions::new()
            .min_connections(8)
            .max_connections(16)
            .test_before_acquire(false)
            .connect(url)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        // No queries: the benchmark's only read model is the catch-up, built by replay.
        let cqrs = match variant {
            Variant::Plain => postgres_cqrs(pool.clone(), vec![], ()),
            Variant::Snapshots => postgres_snapshot_cqrs(pool.clone(), vec![], SNAPSHOT_SIZE, ()),
        };
        Ok(Self { cqrs, pool })
    }
}

impl System for Peer {
    async fn open(&self, id: &str, owner: &str) -> Result<()> {
        let command = AccountCommand::Open {
            owner: owner.to_owned(),
        };
        self.cqrs.execute(id, command).await?;
        Ok(())
    }

    async fn deposit(&self, id: &str, amount: u64) -> Result<()> {
        self.cqrs
            .execute(id, AccountCommand::Deposit { amount })
            .await?;
        Ok(())
    }

    async fn seed(&self, id: &str, deposits: usize) -> Result<()> {
        self.open(id, id).await?;
        // One command per chunk: each loads the account (the whole stream in `Plain`, the
        // snapshot and its tail in `Snapshots`) and commits its events in one transaction,
        // so the snapshot variant also gets its snapshots written on the way.
        let mut left = deposits;
        while left > 0 {
            let count = left.min(SEED_CHUNK);
            self.cqrs
                .execute(id, AccountCommand::DepositMany { count })
                .await?;
            left -= count;
        }
        Ok(())
    }

    async fn catchup(&self) -> Result<Catchup> {
        let fold = BalanceFold::default();
        let repo = PostgresEventRepository::new(self.pool.clone());
        let mut replay = QueryReplay::new(repo, fold.clone());
        // Without a handler, `QueryReplay` silently skips events it cannot read.
        let on_error = fold.clone();
        replay.use_error_handler(Box::new(move |e: PersistenceError| {
            on_error.fail(format!("replay: {e}"));
        }));
        replay.replay_all().await?;
        fold.finish()
    }
}

/// An account's balance as a cqrs-es `View`, persisted by postgres-es' view repository.
#[derive(Debug, Default, Serialize, Deserialize)]
struct BalanceView {
    balance: i64,
}

impl cqrs_es::View<Account> for BalanceView {
    fn update(&mut self, event: &EventEnvelope<Account>) {
        match &event.payload {
            AccountEvent::Opened { .. } => {}
            AccountEvent::Deposited { amount } => {
                self.balance = self.balance.saturating_add_unsigned(*amount);
            }
            AccountEvent::Withdrawn { amount } => {
                self.balance = self.balance.saturating_sub_unsigned(*amount);
            }
        }
    }
}

/// The view table postgres-es' `PostgresViewRepository` reads and writes, as in its
/// `db/init.sql`.
const VIEW_TABLE: &str = "
DROP TABLE IF EXISTS balance_view;
CREATE TABLE balance_view
(
    view_id text                        NOT NULL,
    version bigint CHECK (version >= 0) NOT NULL,
    payload json                        NOT NULL,
    PRIMARY KEY (view_id)
);";

impl Peer {
    /// `proj_doc`: every stored event replayed through a `GenericQuery` over
    /// `PostgresViewRepository` (which loads and saves the view per event), into a fresh
    /// view table; events/s, checked against `accounts` accounts of balance 9.
    pub async fn proj_doc(&self, accounts: usize) -> Result<f64> {
        use cqrs_es::persist::GenericQuery;
        use postgres_es::PostgresViewRepository;
        sqlx::raw_sql(VIEW_TABLE).execute(&self.pool).await?;
        let views = Arc::new(PostgresViewRepository::<BalanceView, Account>::new(
            "balance_view",
            self.pool.clone(),
        ));
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let mut query = GenericQuery::new(views);
        let on_error = Arc::clone(&failure);
        query.use_error_handler(Box::new(move |e| {
            let mut failure = on_error.lock().unwrap_or_else(PoisonError::into_inner);
            failure.get_or_insert(format!("view: {e}"));
        }));
        let mut replay = QueryReplay::new(PostgresEventRepository::new(self.pool.clone()), query);
        let on_error = Arc::clone(&failure);
        replay.use_error_handler(Box::new(move |e: PersistenceError| {
            let mut failure = on_error.lock().unwrap_or_else(PoisonError::into_inner);
            failure.get_or_insert(format!("replay: {e}"));
        }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let start = std::time::Instant::now();
        replay.replay_all().await?;
        let rate = (accounts * 10) as f64 / start.elapsed().as_secs_f64();
        if let Some(failure) = failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(failure.into());
        }
        let (rows, nines): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE (payload->>'balance')::int8 = 9) FROM balance_view",
        )
        .fetch_one(&self.pool)
        .await?;
        if rows != accounts as i64 || nines != rows {
            return Err(
                format!("{rows} views ({nines} of balance 9) for {accounts} accounts").into(),
            );
        }
        Ok(rate)
    }
}
