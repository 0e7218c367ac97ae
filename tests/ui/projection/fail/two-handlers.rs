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
    fn placed(&mut self, _: &Placed) {
        self.orders += 1;
    }

    #[handle]
    fn placed_again(&mut self, _: &Placed) {}
}

fn main() {}
