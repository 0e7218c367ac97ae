//! What every system under test implements: the Account domain, driven through the
//! system's own command, append and replay paths.

use std::collections::HashMap;
use std::future::Future;

/// Any error; the harness reports it with the system's name and stops that system.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The harness's result.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Which configuration of a system to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// No snapshots, no caching: every command loads the whole stream.
    Plain,
    /// The system's snapshots and caching, if it has any (`hot_snap_ms`).
    Snapshots,
}

/// What a catch-up produced: how many events it saw and the balance of every account.
#[derive(Debug, Default)]
pub struct Catchup {
    /// Events folded into the model.
    pub events: u64,
    /// Balance per account id: deposits minus withdrawals.
    pub balances: HashMap<String, i64>,
}

impl Catchup {
    /// Folds one event into the model.
    pub fn deposit(&mut self, account: &str, amount: i64) {
        self.events += 1;
        *self.balances.entry(account.to_owned()).or_default() += amount;
    }

    /// Counts an event that does not move money (Opened).
    pub fn other(&mut self, account: &str) {
        self.events += 1;
        self.balances.entry(account.to_owned()).or_default();
    }
}

/// One event-sourcing system, on its own freshly created tables.
///
/// Domain, identical everywhere: an Account with events `Opened { owner }`,
/// `Deposited { amount }` and `Withdrawn { amount }`. The Deposit command loads the
/// account, refuses unless it is open, and records one `Deposited`.
pub trait System: Send + Sync + 'static {
    /// Opens account `id` through the command path (one `Opened`).
    fn open(&self, id: &str, owner: &str) -> impl Future<Output = Result<()>> + Send;

    /// The Deposit command on account `id`: load, check it is open, record one `Deposited`.
    fn deposit(&self, id: &str, amount: u64) -> impl Future<Output = Result<()>> + Send;

    /// Setup, never timed: writes an opened account followed by `deposits` deposits of 1,
    /// as fast as the system's own append path allows (batches of many events).
    fn seed(&self, id: &str, deposits: usize) -> impl Future<Output = Result<()>> + Send;

    /// Rebuilds the balance of every account from all stored events through the system's
    /// own replay, rebuild or subscription path, into memory.
    fn catchup(&self) -> impl Future<Output = Result<Catchup>> + Send;

    /// Whether the system takes part in `hot_16`: many tasks' deposits on one account.
    const HOT_16: bool = false;

    /// The Deposit command as many concurrent tasks run it on one account: what the system
    /// needs to stay correct there (a lock, or its own retries). The default is `deposit`.
    fn hot_deposit(&self, id: &str, amount: u64) -> impl Future<Output = Result<()>> + Send {
        self.deposit(id, amount)
    }

    /// Commands decided again after a conflict so far, where the system counts them.
    fn retried(&self) -> u64 {
        0
    }
}
