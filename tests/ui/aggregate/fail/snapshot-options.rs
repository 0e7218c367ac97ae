use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Incremented {
    by: u32,
}

#[derive(Default, Snapshot, Serialize, Deserialize)]
struct Counter {
    value: u32,
}

// A snapshot every 0 events means nothing.
#[aggregate(snapshot_every = 0)]
impl Counter {
    #[apply]
    fn incremented(&mut self, e: &Incremented) {
        self.value += e.by;
    }
}

#[derive(Default)]
struct Gauge {
    value: u32,
}

// `snapshot_version` versions the snapshots `snapshot_every` turns on.
#[aggregate(snapshot_version = 2)]
impl Gauge {
    #[apply]
    fn incremented(&mut self, e: &Incremented) {
        self.value = e.by;
    }
}

fn main() {}
