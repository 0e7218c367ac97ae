use annals::prelude::*;

#[aggregate]
struct Account;

fn main() {}
