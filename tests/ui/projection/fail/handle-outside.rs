use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed {
    customer: String,
    total: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Cancelled;

struct Stats;

impl Stats {
    #[handle]
    fn placed(&mut self, _: &Placed) {}
}

fn main() {}
