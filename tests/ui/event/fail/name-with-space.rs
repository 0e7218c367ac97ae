use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "OrderPlaced ")]
struct OrderPlaced;

fn main() {}
