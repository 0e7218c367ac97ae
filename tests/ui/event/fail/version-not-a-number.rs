use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(version = "2")]
struct Opened;

fn main() {}
