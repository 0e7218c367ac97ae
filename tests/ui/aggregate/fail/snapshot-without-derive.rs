use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Incremented {
    by: u32,
}

// `snapshot_every` needs the state to derive `Snapshot` (and serde): the error says so.
#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: u32,
}

#[aggregate(snapshot_every = 100)]
impl Counter {
    #[apply]
    fn incremented(&mut self, e: &Incremented) {
        self.value += e.by;
    }
}

fn main() {}
