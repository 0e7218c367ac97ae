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

#[derive(Debug)]
struct Customer;

#[projection]
impl Stats {
    #[handle(key = Customer)]
    fn placed(&mut self, e: &Placed) {
        self.orders += e.total as u32;
    }
}

fn main() {}
