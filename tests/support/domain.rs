//! A small aggregate the store-level tests drive through the repository.

use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Opened {
    pub owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

pub struct Open(pub String);

#[derive(Clone)]
pub struct Deposit(pub u64);

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is not open")]
    NotOpen,
    #[error("the account is already open")]
    AlreadyOpen,
}

#[derive(Debug, Default)]
pub struct Account {
    pub owner: Option<String>,
    pub balance: u64,
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

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Issued {
    pub title: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Stamped;

pub struct Issue(pub String);

pub struct Stamp;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is already issued as {0:?}")]
    AlreadyIssued(String),
    #[error("the ticket is not issued")]
    NotIssued,
}

/// Creating commands whose bet on a new stream can go every way: `Issue` decides nothing
/// when repeated, `Stamp` is rejected on the default state.
#[derive(Debug, Default)]
pub struct Ticket {
    pub title: Option<String>,
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
    pub units: u64,
}

/// The current ledger entry: renamed, in cents, with an optional note.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "EntryRecorded", version = 2, previous = PostedV1, renamed)]
pub struct EntryRecorded {
    pub cents: u64,
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

#[derive(Debug, Default)]
pub struct Ledger {
    pub cents: u64,
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

    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub struct Credited {
        pub amount: u64,
    }

    pub struct Credit(pub u64);

    /// A credit as a creating command: it bets on a new ledger when none is cached.
    pub struct Grant(pub u64);

    /// Snapshots every 5 events.
    pub mod v1 {
        use super::{Credit, Credited, Grant};
        use annals::prelude::*;

        #[derive(Debug, Default, Snapshot, Serialize, Deserialize)]
        pub struct Ledger {
            pub total: u64,
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

        #[derive(Debug, Default, Snapshot, Serialize, Deserialize)]
        pub struct Ledger {
            pub total: u64,
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

        #[derive(Debug, Default, Snapshot, Serialize, Deserialize)]
        pub struct Ledger {
            pub total: u64,
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

    #[derive(Event, Deserialize)]
    #[event(name = "Joined", version = 1)]
    pub struct JoinedV1 {
        pub name: String,
    }

    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[event(version = 2, previous = JoinedV1)]
    pub struct Joined {
        pub name: String,
        pub joined_at: DateTime<Utc>,
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

    pub struct Join(pub String);

    #[derive(Default)]
    pub struct Member {
        pub names: Vec<String>,
        pub joined_at: Option<DateTime<Utc>>,
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
