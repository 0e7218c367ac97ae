use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, previous = Self)]
struct MoneyDeposited {
    amount: u64,
}

fn main() {}
