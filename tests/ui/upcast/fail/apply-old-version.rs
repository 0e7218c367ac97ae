// The chain continues past the applied type: stored `EntryRecorded` v2 events would be
// unknown to this aggregate, so applying the old version is refused.
use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "Posted", version = 1)]
struct PostedV1 {
    cents: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "EntryRecorded", version = 2, previous = PostedV1, renamed)]
struct EntryRecorded {
    cents: u64,
}

impl From<PostedV1> for EntryRecorded {
    fn from(v1: PostedV1) -> Self {
        Self { cents: v1.cents }
    }
}

#[derive(Default)]
struct Ledger {
    total: u64,
}

#[aggregate]
impl Ledger {
    #[apply]
    fn posted(&mut self, e: &PostedV1) {
        self.total += e.cents;
    }
}

fn main() {}
