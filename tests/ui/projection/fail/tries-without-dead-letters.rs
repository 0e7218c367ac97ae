use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed;

#[derive(Default, Serialize, Deserialize)]
struct Stats {
    orders: u32,
}

#[projection(tries = 3)]
impl Stats {
    #[handle]
    fn placed(&mut self, _: &Placed) {
        self.orders += 1;
    }
}

fn main() {}
