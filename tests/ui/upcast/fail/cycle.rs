//! Two types that name each other as `previous`, applied by an aggregate: one error, at
//! the link that points to the newer version, and nothing about old versions.
use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "MoneyDeposited", version = 1, previous = MoneyDeposited)]
struct MoneyDepositedV1 {
    amount: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(version = 2, previous = MoneyDepositedV1)]
struct MoneyDeposited {
    amount: u64,
}

impl From<MoneyDepositedV1> for MoneyDeposited {
    fn from(v1: MoneyDepositedV1) -> Self {
        Self { amount: v1.amount }
    }
}

impl From<MoneyDeposited> for MoneyDepositedV1 {
    fn from(v2: MoneyDeposited) -> Self {
        Self { amount: v2.amount }
    }
}

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn deposited(&mut self, _e: &MoneyDeposited) {}
}

fn main() {}
