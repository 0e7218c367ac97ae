use annals::prelude::*;

#[derive(Event)]
union Opened {
    id: u32,
}

fn main() {}
