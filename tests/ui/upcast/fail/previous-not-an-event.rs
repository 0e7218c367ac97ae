use annals::prelude::*;

#[derive(Serialize, Deserialize)]
struct MoneyDepositedV1 {
    amount: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, previous = MoneyDepositedV1)]
struct MoneyDeposited {
    amount: u64,
}

impl From<MoneyDepositedV1> for MoneyDeposited {
    fn from(v1: MoneyDepositedV1) -> Self {
        Self { amount: v1.amount }
    }
}

fn main() {}
