//! An aggregate using every shape the macros accept: commands by reference and by value,
//! sync and async, returning one event, `Option`, `Vec`, an array, a tuple, `()`, the
//! generated enum, with and without `Result`.
#![deny(warnings)]

use annals::prelude::*;
use annals::testing::AggregateTest;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened {
    owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "MoneyDeposited", version = 2)]
struct Deposited {
    amount: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Closed;

struct Open {
    owner: String,
}
#[derive(Clone)]
struct Deposit(u64);
struct DepositEach(Vec<u64>);
struct OpenWith {
    owner: String,
    amount: u64,
}
struct Touch;
struct Close;
#[derive(Clone)]
struct Reopen(String);
struct Replay(Vec<AccountEvent>);

#[derive(Debug, PartialEq, thiserror::Error)]
enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
}

#[derive(Default)]
struct Account {
    owner: Option<String>,
    balance: u64,
    closed: bool,
}

#[aggregate]
impl Account {
    #[command(create)]
    fn open(&self, cmd: &Open) -> Result<Opened, AccountError> {
        if self.owner.is_some() {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(Opened {
            owner: cmd.owner.clone(),
        })
    }

    #[command]
    fn deposit(&self, cmd: Deposit) -> Option<Deposited> {
        (cmd.0 > 0).then_some(Deposited { amount: cmd.0 })
    }

    #[command]
    fn deposit_each(&self, cmd: &DepositEach) -> Vec<Deposited> {
        cmd.0.iter().map(|&amount| Deposited { amount }).collect()
    }

    #[command]
    fn open_with(&self, cmd: &OpenWith) -> Result<(Opened, Deposited), AccountError> {
        let opened = self.open(&Open {
            owner: cmd.owner.clone(),
        })?;
        Ok((opened, Deposited { amount: cmd.amount }))
    }

    #[command]
    fn touch(&self, _: &Touch) {}

    #[command]
    async fn close(&self, _cmd: &Close) -> Result<AccountEvent, AccountError> {
        std::future::ready(()).await;
        match self.owner {
            Some(_) => Ok(AccountEvent::Closed(Closed)),
            None => Err(AccountError::NotOpen),
        }
    }

    #[command]
    async fn reopen(&self, cmd: Reopen) -> [Opened; 1] {
        [Opened { owner: cmd.0 }]
    }

    #[command]
    fn replay(&self, cmd: &Replay) -> Vec<AccountEvent> {
        cmd.0.clone()
    }

    #[apply]
    fn opened(&mut self, e: &Opened) {
        self.owner = Some(e.owner.clone());
        self.closed = false;
    }

    #[apply]
    fn deposited(&mut self, e: &Deposited) {
        self.balance += e.amount;
    }

    #[apply]
    fn closed(&mut self, _: &Closed) {
        self.closed = true;
    }
}

fn opened(owner: &str) -> Opened {
    Opened {
        owner: owner.to_owned(),
    }
}

fn main() {
    assert_eq!(Account::CATEGORY, "account");
    assert_eq!(Account::stream_id("7"), "account-7");
    assert!(<Account as annals::Handle<Open>>::CREATES);
    assert!(!<Account as annals::Handle<Deposit>>::CREATES);

    // Names and versions, and the payload round trip through the generated enum.
    let deposited = AccountEvent::from(Deposited { amount: 5 });
    assert_eq!(
        (deposited.event_name(), deposited.event_version()),
        ("MoneyDeposited", 2)
    );
    assert_eq!(AccountEvent::Closed(Closed).event_name(), "Closed");
    let payload = deposited.encode().unwrap();
    assert_eq!(payload.get(), r#"{"amount":5}"#);
    let decoded = AccountEvent::decode("MoneyDeposited", 2, payload.get()).unwrap();
    assert!(
        matches!(decoded, AccountEvent::Deposited(Deposited { amount: 5 })),
        "{decoded:?}"
    );
    let unknown = AccountEvent::decode("MoneyDeposited", 1, payload.get());
    assert!(
        matches!(unknown, Err(annals::DecodeErrorKind::UnknownEvent)),
        "{unknown:?}"
    );

    // `apply` dispatches each variant to its method.
    let mut account = Account::default();
    account.apply(&opened("ann").into());
    account.apply(&AccountEvent::Deposited(Deposited { amount: 3 }));
    account.apply(&AccountEvent::Closed(Closed));
    assert_eq!(
        (account.owner.as_deref(), account.balance, account.closed),
        (Some("ann"), 3, true)
    );

    let open = || AggregateTest::<Account>::given([opened("ann")]);
    AggregateTest::<Account>::given_no_history()
        .when(Open {
            owner: "ann".into(),
        })
        .then_expect_events([opened("ann")]);
    open()
        .when(Open {
            owner: "bob".into(),
        })
        .then_expect_error(AccountError::AlreadyOpen);
    let account = open()
        .when(Deposit(4))
        .then_expect_events([Deposited { amount: 4 }]);
    assert_eq!(
        (account.owner.as_deref(), account.balance),
        (Some("ann"), 4)
    );
    open().when(Deposit(0)).then_expect_no_events();
    open()
        .when(DepositEach(vec![1, 2]))
        .then_expect_events([Deposited { amount: 1 }, Deposited { amount: 2 }]);
    AggregateTest::<Account>::given_no_history()
        .when(OpenWith {
            owner: "cy".into(),
            amount: 9,
        })
        .then_expect_events([
            AccountEvent::from(opened("cy")),
            Deposited { amount: 9 }.into(),
        ]);
    open().when(Touch).then_expect_no_events();
    let account = open().when(Close).then_expect_events([Closed]);
    assert!(account.closed);
    AggregateTest::<Account>::given_no_history()
        .when(Close)
        .then_expect_error(AccountError::NotOpen);
    open()
        .when(Reopen("dee".into()))
        .then_expect_events([opened("dee")]);
    open()
        .when(Replay(vec![Closed.into(), opened("eve").into()]))
        .then_expect_events([AccountEvent::Closed(Closed), opened("eve").into()]);
}
