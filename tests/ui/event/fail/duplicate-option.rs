use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2, version = 3)]
struct Opened;

fn main() {}
