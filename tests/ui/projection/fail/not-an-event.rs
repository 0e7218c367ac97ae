use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed {
    customer: String,
    total: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Cancelled;

struct Shipped;

#[derive(Default, Serialize, Deserialize)]
struct Stats {
    orders: u32,
}

#[projection]
impl Stats {
    #[handle]
    fn shipped(&mut self, _: &Shipped) {}
}

fn main() {}
