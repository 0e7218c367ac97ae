//! A small aggregate the store-level tests drive through the repository.

use annals::prelude::*;

/// An account was opened by `owner`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Opened {
    /// Who owns the account.
    pub owner: String,
}

/// Money was paid into the account.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Deposited {
    /// Amount deposited.
    pub amount: u64,
}

/// Opens an account for the named owner; a creating command.
pub struct Open(pub String);

/// Deposits the given amount into an open account.
#[derive(Clone)]
pub struct Deposit(pub u64);

/// Why an account refused a command.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// A deposit on an account that was never opened.
    #[error("the account is not open")]
    NotOpen,
    /// `Open` on an account that is already open.
    #[error("the account is already open")]
    AlreadyOpen,
}

/// An account that is opened once and then takes deposits.
#[derive(Debug, Default)]
pub struct Account {
    /// The owner once opened; `None` before.
    pub owner: Option<String>,
    /// Sum of all deposits.
    pub balance: u64,
    /// How many deposits were made.
    pub deposits: u32,
}

#[aggregate(category = "account")]
impl Account {
    #[command(create)]
    fn open(&self, cmd: &Open) -> Result<Opened, AccountError> {
        match self.owner {
            Some(_) => Err(AccountError::AlreadyOpen),
            None => Ok(Opened {
                owner: cmd.0.clone(),
            }),
        }
    }

    #[command]
    fn deposit(&self, cmd: Deposit) -> Result<Deposited, AccountError> {
        self.owner.as_ref().ok_or(AccountError::NotOpen)?;
        Ok(Deposited { amount: cmd.0 })
    }

    #[apply]
    fn opened(&mut self, e: &Opened) {
        self.owner = Some(e.owner.clone());
    }

    #[apply]
    fn deposited(&mut self, e: &Deposited) {
        self.balance += e.amount;
        self.deposits += 1;
    }
}

/// A ticket was issued under `title`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Issued {
    /// The ticket's title.
    pub title: String,
}

/// A ticket was stamped.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Stamped;

/// Issues a ticket with the given title; repeated with the same title, it records nothing.
pub struct Issue(pub String);

/// Stamps an issued ticket; a creating command that a ticket never issued rejects.
pub struct Stamp;

/// Why a ticket refused a command.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TicketError {
    /// `Issue` with another title on a ticket already issued under the title it holds.
    #[error("the ticket is already issued as {0:?}")]
    AlreadyIssued(String),
    /// `Stamp` on a ticket that was never issued.
    #[error("the ticket is not issued")]
    NotIssued,
}

/// Creating commands whose bet on a new stream can go every way: `Issue` decides nothing
/// when repeated, `Stamp` is rejected on the default state.
#[derive(Debug, Default)]
pub struct Ticket {
    /// The title once issued; `None` before.
    pub title: Option<String>,
    /// How many times the ticket was stamped.
    pub stamps: u32,
}

#[aggregate(category = "ticket")]
impl Ticket {
    #[command(create)]
    fn issue(&self, cmd: &Issue) -> Result<Option<Issued>, TicketError> {
        match &self.title {
            None => Ok(Some(Issued {
                title: cmd.0.clone(),
            })),
            Some(title) if *title == cmd.0 => Ok(None),
            Some(title) => Err(TicketError::AlreadyIssued(title.clone())),
        }
    }

    #[command(create)]
    fn stamp(&self, _: &Stamp) -> Result<Stamped, TicketError> {
        self.title.as_ref().ok_or(TicketError::NotIssued)?;
        Ok(Stamped)
    }

    #[apply]
    fn issued(&mut self, e: &Issued) {
        self.title = Some(e.title.clone());
    }

    #[apply]
    fn stamped(&mut self, _: &Stamped) {
        self.stamps += 1;
    }
}

/// The first version of a ledger entry, stored as `Posted` in whole units: kept so stored
/// history still loads (the conformance suite's upcasting check).
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "Posted", version = 1)]
pub struct PostedV1 {
    /// Amount in whole units.
    pub units: u64,
}

/// The current ledger entry: renamed, in cents, with an optional note.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "EntryRecorded", version = 2, previous = PostedV1, renamed)]
pub struct EntryRecorded {
    /// Amount in cents.
    pub cents: u64,
    /// A free-text note; empty when the stored payload has none.
    #[serde(default)]
    pub note: String,
}

impl From<PostedV1> for EntryRecorded {
    fn from(v1: PostedV1) -> Self {
        Self {
            cents: v1.units * 100,
            note: String::new(),
        }
    }
}

/// A ledger that only replays `EntryRecorded` events: it has no commands.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Sum of all entries, in cents.
    pub cents: u64,
    /// Every entry's note, in order.
    pub notes: Vec<String>,
}

#[aggregate(category = "ledger")]
impl Ledger {
    #[apply]
    fn recorded(&mut self, e: &EntryRecorded) {
        self.cents += e.cents;
        self.notes.push(e.note.clone());
    }
}
/// Aggregates that take snapshots: one `Ledger` state, three versions of its apply code.
pub mod ledger {
    use annals::prelude::*;

    /// A ledger was credited with `amount`.
    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub struct Credited {
        /// Amount credited.
        pub amount: u64,
    }

    /// Credits the ledger with the given amount.
    pub struct Credit(pub u64);

    /// A credit as a creating command: it bets on a new ledger when none is cached.
    pub struct Grant(pub u64);

    /// Snapshots every 5 events.
    pub mod v1 {
        use super::{Credit, Credited, Grant};
        use annals::prelude::*;

        /// A ledger's running total, snapshotted every 5 events.
        #[derive(Debug, Default, Snapshot, Serialize, Deserialize)]
        pub struct Ledger {
            /// Sum of all credits.
            pub total: u64,
            /// How many credits were applied.
            pub credits: u64,
        }

        #[aggregate(category = "ledger", snapshot_every = 5)]
        impl Ledger {
            #[command]
            fn credit(&self, cmd: &Credit) -> Credited {
                Credited { amount: cmd.0 }
            }

            #[command(create)]
            fn grant(&self, cmd: &Grant) -> Credited {
                Credited { amount: cmd.0 }
            }

            #[apply]
            fn credited(&mut self, e: &Credited) {
                self.total += e.amount;
                self.credits += 1;
            }
        }
    }

    /// The same state type, with a changed `#[apply]` body.
    pub mod v2 {
        use super::{Credit, Credited};
        use annals::prelude::*;

        /// v1's state, whose `#[apply]` counts each credit twice.
        #[derive(Debug, Default, Snapshot, Serialize, Deserialize)]
        pub struct Ledger {
            /// Sum of all credits, each counted twice.
            pub total: u64,
            /// How many credits were applied.
            pub credits: u64,
        }

        #[aggregate(category = "ledger", snapshot_every = 5)]
        impl Ledger {
            #[command]
            fn credit(&self, cmd: &Credit) -> Credited {
                Credited { amount: cmd.0 }
            }

            #[apply]
            fn credited(&mut self, e: &Credited) {
                self.total += 2 * e.amount;
                self.credits += 1;
            }
        }
    }

    /// v2's code with a manual `snapshot_version`.
    pub mod v3 {
        use super::{Credit, Credited};
        use annals::prelude::*;

        /// v2's state and apply code, snapshotted with `snapshot_version = 1`.
        #[derive(Debug, Default, Snapshot, Serialize, Deserialize)]
        pub struct Ledger {
            /// Sum of all credits, each counted twice.
            pub total: u64,
            /// How many credits were applied.
            pub credits: u64,
        }

        #[aggregate(category = "ledger", snapshot_every = 5, snapshot_version = 1)]
        impl Ledger {
            #[command]
            fn credit(&self, cmd: &Credit) -> Credited {
                Credited { amount: cmd.0 }
            }

            #[apply]
            fn credited(&mut self, e: &Credited) {
                self.total += 2 * e.amount;
                self.credits += 1;
            }
        }
    }
}

/// An aggregate whose old event upcasts with its stored record: `Joined` v1 had no time
/// and no inviter, v2 takes them from what was recorded with the v1 event.
pub mod membership {
    use annals::UpcastFrom;
    use annals::chrono::{DateTime, Utc};
    use annals::prelude::*;

    /// `Joined` as first stored: the name alone, without a time or an inviter.
    #[derive(Event, Deserialize)]
    #[event(name = "Joined", version = 1)]
    pub struct JoinedV1 {
        /// Who joined.
        pub name: String,
    }

    /// `name` joined at `joined_at`, maybe invited by `invited_by`.
    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[event(version = 2, previous = JoinedV1)]
    pub struct Joined {
        /// Who joined.
        pub name: String,
        /// When they joined; for an upcast v1 event, when it was recorded.
        pub joined_at: DateTime<Utc>,
        /// Who invited them; for an upcast v1 event, the actor recorded with it.
        pub invited_by: Option<String>,
    }

    impl UpcastFrom<JoinedV1> for Joined {
        fn upcast_from(v1: JoinedV1, record: &RecordedEvent) -> Self {
            Self {
                name: v1.name,
                joined_at: record.recorded_at,
                invited_by: record.metadata.actor.clone(),
            }
        }
    }

    /// Records that the named member joined now, invited by no one.
    pub struct Join(pub String);

    /// Everyone who joined, with the time of the first join and the first inviter.
    #[derive(Default)]
    pub struct Member {
        /// The names of everyone who joined, in order.
        pub names: Vec<String>,
        /// When the first `Joined` happened.
        pub joined_at: Option<DateTime<Utc>>,
        /// The first inviter any `Joined` named.
        pub invited_by: Option<String>,
    }

    #[aggregate(category = "member")]
    impl Member {
        #[command]
        fn join(&self, cmd: &Join) -> Joined {
            Joined {
                name: cmd.0.clone(),
                joined_at: Utc::now(),
                invited_by: None,
            }
        }

        #[apply]
        fn joined(&mut self, e: &Joined) {
            self.names.push(e.name.clone());
            self.joined_at.get_or_insert(e.joined_at);
            if self.invited_by.is_none() {
                self.invited_by.clone_from(&e.invited_by);
            }
        }
    }
}
