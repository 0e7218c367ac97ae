use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "MoneyDeposited", version = 1)]
struct MoneyDepositedV1 {
    amount: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, previous = MoneyDepositedV1)]
struct MoneyDeposited {
    cents: u64,
}

fn main() {}
