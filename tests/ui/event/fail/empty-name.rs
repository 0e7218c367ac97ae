use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "")]
struct Opened;

fn main() {}
