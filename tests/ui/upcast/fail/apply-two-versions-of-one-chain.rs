use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "MoneyDeposited", version = 1)]
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

#[derive(Default)]
struct Account {
    balance: u64,
}

// The old version is already decoded through `MoneyDeposited`; applying it too is a mistake.
#[aggregate]
impl Account {
    #[apply]
    fn deposited_v1(&mut self, e: &MoneyDepositedV1) {
        self.balance += e.amount;
    }

    #[apply]
    fn deposited(&mut self, e: &MoneyDeposited) {
        self.balance += e.amount;
    }
}

fn main() {}
