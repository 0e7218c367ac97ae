use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, renamed, allow_gap)]
struct MoneyDeposited {
    amount: u64,
}

fn main() {}
