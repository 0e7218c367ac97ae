use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed {
    customer: String,
    total: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Cancelled;

#[derive(Default, Serialize, Deserialize)]
struct Stats {
    orders: u32,
}

#[projection]
impl Stats {
    #[handle]
    fn placed(&mut self, _: &Placed) -> u32 {
        self.orders += 1;
        self.orders
    }
}

fn main() {}
