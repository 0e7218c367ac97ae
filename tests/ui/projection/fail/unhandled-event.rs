use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed {
    customer: String,
    total: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Cancelled;

#[derive(Default)]
struct Order;

#[aggregate]
impl Order {
    #[apply]
    fn placed(&mut self, _: &Placed) {}

    #[apply]
    fn cancelled(&mut self, _: &Cancelled) {}
}

#[derive(Default, Serialize, Deserialize)]
struct Stats {
    orders: u32,
}

#[projection(of = Order)]
impl Stats {
    #[handle]
    fn placed(&mut self, _: &Placed) {
        self.orders += 1;
    }
}

fn main() {}
