use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(nmae = "Opened")]
struct Opened;

fn main() {}
