//! The bank account from the design: open, deposit, withdraw, suspend, with an overdraft
//! rule and a suspended-account rule, persisted in a SQLite file.
//!
//! Run it with `cargo run --example bank [path/to/bank.db]`.

use annals::SqliteStore;
use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct AccountOpened {
    pub owner: String,
    pub overdraft_limit: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct MoneyDeposited {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct MoneyWithdrawn {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct AccountSuspended {
    pub reason: String,
}

pub struct OpenAccount {
    pub owner: String,
    pub overdraft_limit: u64,
}
pub struct Deposit {
    pub amount: u64,
}
pub struct Withdraw {
    pub amount: u64,
}
pub struct Suspend {
    pub reason: String,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("the account is suspended")]
    Suspended,
    #[error("withdrawing {requested} would exceed the overdraft limit: {available} available")]
    InsufficientFunds { requested: u64, available: i64 },
    #[error("amounts must be positive")]
    ZeroAmount,
}

#[derive(Debug, Default)]
pub struct Account {
    pub open: bool,
    pub suspended: bool,
    pub balance: i64,
    pub overdraft_limit: u64,
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
    #[command]
    fn open(&self, cmd: &OpenAccount) -> Result<AccountOpened, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(AccountOpened {
            owner: cmd.owner.clone(),
            overdraft_limit: cmd.overdraft_limit,
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bank.db".to_owned());
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
        "\n{} events: balance {}, {}",
        alice.version(),
        alice.balance,
        if alice.suspended {
            "suspended"
        } else {
            "active"
        }
    );
    Ok(())
}
