//! Mistakes in some methods are reported once each; the enum, the `Aggregate` impl and the
//! handlers still exist, so code using them reports nothing more.
use annals::prelude::*;
use annals::testing::AggregateTest;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Closed;

struct Open;
struct Close;

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("not open")]
struct NotOpen;

#[derive(Default)]
struct Account;

#[aggregate(category = "account", categroy = "accounts")]
impl Account {
    #[command]
    fn open(&mut self, _cmd: &Open) -> Opened {
        Opened
    }

    #[command]
    fn close(&self, _cmd: &Close, _why: &str) -> Result<Closed, NotOpen> {
        Err(NotOpen)
    }

    #[apply]
    fn opened(&self, _e: &Opened) {}

    #[apply]
    fn closed(&mut self, _e: Closed) {}
}

fn main() {
    assert_eq!(Account::CATEGORY, "account");
    let _ = AccountEvent::Opened(Opened);
    let _ = AccountEvent::from(Closed);
    AggregateTest::<Account>::given([Opened])
        .when(Open)
        .then_expect_events([Opened]);
    AggregateTest::<Account>::given_no_history()
        .when(Close)
        .then_expect_error(NotOpen);
}
