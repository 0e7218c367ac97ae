//! Projections over the account domain that the projection checks run.

use annals::prelude::*;
use annals::projection::{Change, EventMeta};

use crate::domain::{Account, Deposited, Opened};

/// An account's owner and balance, one document per account stream; handles every event
/// of [`Account`], which the compiler checks.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Balance {
    /// Who owns it.
    pub owner: String,
    /// Sum of the deposits.
    pub balance: u64,
    /// How many events were applied: an event applied twice shows here.
    pub applied: u32,
}

#[projection(name = "balances", of = Account)]
impl Balance {
    #[handle]
    fn opened(&mut self, e: &Opened) {
        self.owner = e.owner.clone();
        self.applied += 1;
    }

    #[handle]
    fn deposited(&mut self, e: &Deposited) {
        self.balance += e.amount;
        self.applied += 1;
    }
}

/// How many accounts each owner has: one document gathers many streams.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Owner {
    /// Accounts opened by the owner.
    pub accounts: u32,
}

#[projection(of = Account, ignore(Deposited))]
impl Owner {
    #[handle(key = e.owner)]
    fn opened(&mut self, e: &Opened) {
        self.accounts += 1;
    }
}

/// Where each account's last event was, from the handlers' metadata.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LastSeen {
    /// The last event's global position.
    pub position: u64,
    /// Its version in its stream.
    pub stream_version: u64,
    /// Its correlation id.
    pub correlation: String,
}

#[projection(name = "last_seen")]
impl LastSeen {
    #[handle]
    fn opened(&mut self, _: &Opened, meta: &EventMeta) {
        self.seen(meta);
    }

    #[handle]
    fn deposited(&mut self, _: &Deposited, meta: &EventMeta) {
        self.seen(meta);
    }
}

impl LastSeen {
    fn seen(&mut self, meta: &EventMeta) {
        self.position = meta.position;
        self.stream_version = meta.stream_version;
        self.correlation = meta.metadata.correlation_id.to_string();
    }
}

/// Balances whose handler fails on a deposit of 13 and panics on 666; a deposit of 0
/// deletes the document.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Fragile {
    /// Sum of the deposits.
    pub balance: u64,
}

#[projection(name = "fragile")]
impl Fragile {
    #[handle]
    fn deposited(&mut self, e: &Deposited) -> Result<Change, String> {
        match e.amount {
            0 => Ok(Change::Delete),
            13 => Err("thirteen is unlucky".to_owned()),
            666 => panic!("the beast"),
            amount => {
                self.balance += amount;
                Ok(Change::Keep)
            }
        }
    }
}

/// Who joined and when, from `Joined` events whose v1 upcasts with its stored record: the
/// runner reads full records for it, though no handler takes the metadata.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Joins {
    /// (name, when, invited by), in order.
    pub joined: Vec<(
        String,
        annals::chrono::DateTime<annals::chrono::Utc>,
        Option<String>,
    )>,
}

#[projection(name = "joins")]
impl Joins {
    #[handle]
    fn joined(&mut self, e: &crate::domain::membership::Joined) {
        self.joined
            .push((e.name.clone(), e.joined_at, e.invited_by.clone()));
    }
}

/// Balances that halt on a deposit of 13 instead of trying it again.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Halting {
    /// Sum of the deposits.
    pub balance: u64,
}

#[projection(name = "halting", on_error = "stop")]
impl Halting {
    #[handle]
    fn deposited(&mut self, e: &Deposited) -> Result<(), String> {
        if e.amount == 13 {
            return Err("thirteen stops it".to_owned());
        }
        self.balance += e.amount;
        Ok(())
    }
}

/// The next version of [`Balance`]: deposits in cents. It builds beside version 1, which
/// keeps serving until it is dropped.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BalanceV2 {
    /// Sum of the deposits, in cents.
    pub cents: u64,
}

#[projection(name = "balances", version = 2)]
impl BalanceV2 {
    #[handle]
    fn deposited(&mut self, e: &Deposited) {
        self.cents += e.amount * 100;
    }
}

/// The account streams whose deposits of 13 [`Careful`] applies: a fix deployed while
/// such a deposit waits in the dead letters. Each check names streams of its own.
pub static FIXED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Deposits per account, in the order applied; a deposit of 13 fails until its stream is
/// in [`FIXED`], and then goes to the dead letters instead of holding the projection.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Careful {
    /// The deposits applied, in order.
    pub deposits: Vec<u64>,
}

#[projection(name = "careful", on_error = "dead_letter")]
impl Careful {
    #[handle]
    fn deposited(&mut self, e: &Deposited, meta: &EventMeta) -> Result<(), String> {
        let fixed = FIXED
            .lock()
            .is_ok_and(|fixed| fixed.contains(&meta.stream_id));
        if e.amount == 13 && !fixed {
            return Err("thirteen is not handled yet".to_owned());
        }
        self.deposits.push(e.amount);
        Ok(())
    }
}

/// [`Balance`] split into four parts by account, each with its own checkpoint and lease
/// on stores that keep shards; read as one.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Sharded {
    /// Sum of the deposits.
    pub balance: u64,
    /// How many events were applied: an event applied twice shows here.
    pub applied: u32,
}

#[projection(name = "sharded_balances", shards = 4)]
impl Sharded {
    #[handle]
    fn opened(&mut self, _: &Opened) {
        self.applied += 1;
    }

    #[handle]
    fn deposited(&mut self, e: &Deposited) {
        self.balance += e.amount;
        self.applied += 1;
    }
}

/// Balances that set a deposit of 13 aside after four tries of their own, whatever the
/// runner's `dead_letter_after`.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Patient {
    /// Sum of the deposits.
    pub balance: u64,
}

#[projection(name = "patient", on_error = "dead_letter", tries = 4)]
impl Patient {
    #[handle]
    fn deposited(&mut self, e: &Deposited) -> Result<(), String> {
        if e.amount == 13 {
            return Err("thirteen, again".to_owned());
        }
        self.balance += e.amount;
        Ok(())
    }
}

/// Everything the handlers learn of each event of an account, in order: what an inline
/// projection sees must be what readers of the log see.
#[derive(Default, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Trail {
    /// Per event: id, stream version, position, transaction id, recording time in
    /// microseconds, correlation id.
    pub seen: Vec<(String, u64, u64, u64, i64, String)>,
}

#[projection(name = "trails", of = Account)]
impl Trail {
    #[handle]
    fn opened(&mut self, _: &Opened, meta: &EventMeta) {
        self.saw(meta);
    }

    #[handle]
    fn deposited(&mut self, _: &Deposited, meta: &EventMeta) {
        self.saw(meta);
    }
}

impl Trail {
    fn saw(&mut self, meta: &EventMeta) {
        self.seen.push((
            meta.event_id.to_string(),
            meta.stream_version,
            meta.position,
            meta.checkpoint.transaction_id,
            meta.recorded_at.timestamp_micros(),
            meta.metadata.correlation_id.to_string(),
        ));
    }
}
