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

#[projection(versoin = 2)]
impl Stats {
    #[handle(kye = e.customer)]
    fn placed(&mut self, e: &Placed) {}
}

fn main() {}
