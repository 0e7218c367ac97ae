use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(version = 0)]
struct Opened;

fn main() {}
