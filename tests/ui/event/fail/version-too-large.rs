use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(version = 3000000000)]
struct Opened;

fn main() {}
