use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
struct Opened<T> {
    by: T,
}

fn main() {}
