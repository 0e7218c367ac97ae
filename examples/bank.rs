//! The bank account from the design: open, deposit, withdraw, suspend, with an overdraft
//! rule and a suspended-account rule, persisted in a SQLite file.
//!
//! Run it with `cargo run --example bank [path/to/bank.db]`. It ends by loading
//! `examples/data/bank-v1.db`, history recorded before `AccountOpened` had a currency, through
//! the v1 -> v2 upcaster. `cargo run --example bank -- --record-v1 examples/data/bank-v1.db`
//! recreates that file the way the older release wrote it.

use annals::SqliteStore;
use annals::prelude::*;

/// `AccountOpened` as the first release stored it, before accounts had a currency. Kept so
/// that history still loads.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "AccountOpened", version = 1)]
pub struct AccountOpenedV1 {
    /// Who owns the account.
    pub owner: String,
    /// How far below zero the balance may go.
    pub overdraft_limit: u64,
}

/// An account was opened by `owner`, with its overdraft limit and currency.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(version = 2, previous = AccountOpenedV1)]
pub struct AccountOpened {
    /// Who owns the account.
    pub owner: String,
    /// How far below zero the balance may go.
    pub overdraft_limit: u64,
    /// The currency the account is kept in, such as `"CHF"`.
    pub currency: String,
}

/// The upcaster: every account opened before currencies existed was in euros.
impl From<AccountOpenedV1> for AccountOpened {
    fn from(v1: AccountOpenedV1) -> Self {
        Self {
            owner: v1.owner,
            overdraft_limit: v1.overdraft_limit,
            currency: "EUR".into(),
        }
    }
}

/// Money was paid into the account.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct MoneyDeposited {
    /// Amount deposited, in the account's currency.
    pub amount: u64,
}

/// Money was taken out of the account.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct MoneyWithdrawn {
    /// Amount withdrawn, in the account's currency.
    pub amount: u64,
}

/// The account was suspended: it refuses deposits and withdrawals from then on.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct AccountSuspended {
    /// Why the account was suspended.
    pub reason: String,
}

/// Opens an account for its owner; the command that starts an account's stream.
pub struct OpenAccount {
    /// Who will own the account.
    pub owner: String,
    /// How far below zero the balance may go.
    pub overdraft_limit: u64,
    /// The currency the account is kept in.
    pub currency: String,
}
/// Pays money into an open, unsuspended account.
pub struct Deposit {
    /// Amount to deposit; zero is refused.
    pub amount: u64,
}
/// Takes money out of an open, unsuspended account, within its overdraft limit.
pub struct Withdraw {
    /// Amount to withdraw.
    pub amount: u64,
}
/// Suspends an open account; suspending it again records nothing.
pub struct Suspend {
    /// Why the account is suspended.
    pub reason: String,
}

/// Why an account refused a command.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// `OpenAccount` on an account that is already open.
    #[error("the account is already open")]
    AlreadyOpen,
    /// A command on an account that was never opened.
    #[error("the account is not open")]
    NotOpen,
    /// A deposit or withdrawal on a suspended account.
    #[error("the account is suspended")]
    Suspended,
    /// A withdrawal that would take the balance below the overdraft limit.
    #[error("withdrawing {requested} would exceed the overdraft limit: {available} available")]
    InsufficientFunds {
        /// Amount the withdrawal asked for.
        requested: u64,
        /// What could still be withdrawn: the balance plus the overdraft limit.
        available: i64,
    },
    /// A deposit of zero.
    #[error("amounts must be positive")]
    ZeroAmount,
}

/// An account's state, derived from its events alone.
#[derive(Debug, Default)]
pub struct Account {
    /// Whether the account has been opened.
    pub open: bool,
    /// Whether the account is suspended.
    pub suspended: bool,
    /// Current balance; negative when overdrawn.
    pub balance: i64,
    /// How far below zero the balance may go.
    pub overdraft_limit: u64,
    /// The currency the account is kept in.
    pub currency: String,
}

impl Account {
    fn check_active(&self) -> Result<(), AccountError> {
        match (self.open, self.suspended) {
            (false, _) => Err(AccountError::NotOpen),
            (true, true) => Err(AccountError::Suspended),
            (true, false) => Ok(()),
        }
    }
}

#[aggregate(category = "account")]
impl Account {
    /// Opening starts the account's stream: `create` skips the read of a new stream.
    #[command(create)]
    fn open(&self, cmd: &OpenAccount) -> Result<AccountOpened, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(AccountOpened {
            owner: cmd.owner.clone(),
            overdraft_limit: cmd.overdraft_limit,
            currency: cmd.currency.clone(),
        })
    }

    #[command]
    fn deposit(&self, cmd: &Deposit) -> Result<MoneyDeposited, AccountError> {
        self.check_active()?;
        if cmd.amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        Ok(MoneyDeposited { amount: cmd.amount })
    }

    #[command]
    fn withdraw(&self, cmd: &Withdraw) -> Result<MoneyWithdrawn, AccountError> {
        self.check_active()?;
        let available = self.balance + self.overdraft_limit as i64;
        if cmd.amount as i64 > available {
            return Err(AccountError::InsufficientFunds {
                requested: cmd.amount,
                available,
            });
        }
        Ok(MoneyWithdrawn { amount: cmd.amount })
    }

    #[command]
    fn suspend(&self, cmd: &Suspend) -> Result<Option<AccountSuspended>, AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        // Suspending twice records nothing new.
        Ok((!self.suspended).then(|| AccountSuspended {
            reason: cmd.reason.clone(),
        }))
    }

    #[apply]
    fn opened(&mut self, e: &AccountOpened) {
        self.open = true;
        self.overdraft_limit = e.overdraft_limit;
        self.currency = e.currency.clone();
    }

    #[apply]
    fn deposited(&mut self, e: &MoneyDeposited) {
        self.balance += e.amount as i64;
    }

    #[apply]
    fn withdrawn(&mut self, e: &MoneyWithdrawn) {
        self.balance -= e.amount as i64;
    }

    #[apply]
    fn suspended(&mut self, _: &AccountSuspended) {
        self.suspended = true;
    }
}

/// The v1 data set shipped with the example.
const V1_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/bank-v1.db");

/// Writes the history the first release recorded: `AccountOpened` v1, without a currency.
async fn record_v1(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = SqliteStore::open(path).await?;
    let events = vec![
        NewEvent::from_event(&AccountOpenedV1 {
            owner: "Bob".into(),
            overdraft_limit: 20,
        })?,
        NewEvent::from_event(&MoneyDeposited { amount: 70 })?,
        NewEvent::from_event(&MoneyWithdrawn { amount: 30 })?,
    ];
    store
        .append(
            &Account::stream_id("bob"),
            ExpectedVersion::NoStream,
            events,
        )
        .await?;
    store.close().await;
    println!("recorded the v1 history of account bob in {path}");
    Ok(())
}

/// Loads account bob from a copy of the v1 data set: its `AccountOpened` v1 goes through
/// the upcaster.
async fn load_v1(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let copy = std::env::temp_dir().join(format!("annals-bank-v1-{}.db", std::process::id()));
    std::fs::copy(path, &copy)?;
    let store = SqliteStore::open(&copy).await?;
    let report = annals::schema::verify(&store).await?;
    let bob = Repository::<Account, _>::new(store.clone())
        .load("bob")
        .await?;
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", copy.display()));
    }
    if !report.is_ok() {
        return Err(format!("undecodable events in {path}: {:?}", report.unknown).into());
    }
    println!(
        "\nloaded bob from the v1 data set: balance {} {}, {} events, stored as {:?}",
        bob.balance,
        bob.currency,
        bob.version(),
        report.stored.keys().collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = match args.next() {
        Some(flag) if flag == "--record-v1" => {
            let path = args.next().unwrap_or_else(|| V1_DATA.to_owned());
            return record_v1(&path).await;
        }
        Some(path) => path,
        None => "bank.db".to_owned(),
    };
    // Each run tells the same story from an empty log.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = SqliteStore::open(&path).await?;
    let accounts = Repository::<Account, _>::new(store.clone());
    let ctx = CommandContext::new().with_actor("teller-7");

    accounts
        .execute_with(
            "alice",
            OpenAccount {
                owner: "Alice".into(),
                overdraft_limit: 50,
                currency: "CHF".into(),
            },
            &ctx,
        )
        .await?;
    println!("opened account alice (overdraft limit 50)");
    for amount in [100, 50] {
        accounts
            .execute_with("alice", Deposit { amount }, &ctx)
            .await?;
        println!("deposited {amount}");
    }
    accounts
        .execute_with("alice", Withdraw { amount: 30 }, &ctx)
        .await?;
    println!("withdrew 30");
    match accounts
        .execute_with("alice", Withdraw { amount: 500 }, &ctx)
        .await
    {
        Err(ExecuteError::Rejected(e)) => println!("refused to withdraw 500: {e}"),
        other => {
            return Err(format!("expected the overdraft rule to refuse, got {other:?}").into());
        }
    }
    accounts
        .execute_with(
            "alice",
            Suspend {
                reason: "suspicious activity".into(),
            },
            &ctx,
        )
        .await?;
    println!("suspended the account");
    match accounts
        .execute_with("alice", Deposit { amount: 10 }, &ctx)
        .await
    {
        Err(ExecuteError::Rejected(e)) => println!("refused to deposit 10: {e}"),
        other => {
            return Err(format!("expected the suspension rule to refuse, got {other:?}").into());
        }
    }
    store.close().await;

    // Reopen the file: the state is derived from the persisted events alone.
    let store = SqliteStore::open(&path).await?;
    let accounts = Repository::<Account, _>::new(store);
    println!(
        "\naudit trail of stream `{}` in {path}:",
        Account::stream_id("alice")
    );
    for entry in accounts.history("alice").await? {
        let r = &entry.record;
        println!(
            "  v{} @{} {} {} by {}",
            r.stream_version,
            r.position,
            r.name,
            r.payload.get(),
            r.metadata.actor.as_deref().unwrap_or("?")
        );
    }
    let alice = accounts.load("alice").await?;
    println!(
        "\n{} events: balance {} {}, {}",
        alice.version(),
        alice.balance,
        alice.currency,
        if alice.suspended {
            "suspended"
        } else {
            "active"
        }
    );
    load_v1(V1_DATA).await
}
