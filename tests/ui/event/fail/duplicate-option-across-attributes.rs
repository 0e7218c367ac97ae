use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "AccountOpened")]
#[event(name = "Opened")]
struct Opened;

fn main() {}
