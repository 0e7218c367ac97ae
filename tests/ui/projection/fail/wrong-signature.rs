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
    fn placed(&self, e: Placed) {
        let _ = e;
    }
}

fn main() {}
