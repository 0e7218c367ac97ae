//! Every missing derive is reported once, at the type in the `#[apply]` signature.
use annals::prelude::*;

struct Opened;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
