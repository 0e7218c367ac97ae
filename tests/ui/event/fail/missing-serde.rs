//! An event without serde's derives is reported at its derive, once each, and not again
//! where an aggregate applies it or code names it as an event.
use annals::prelude::*;

#[derive(Event, Debug, Clone)]
struct Opened;

#[derive(Event, Deserialize, Debug, Clone)]
struct Closed;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &Opened) {}

    #[apply]
    fn closed(&mut self, _e: &Closed) {}
}

fn main() {
    assert_eq!(<Opened as Event>::NAME, "Opened");
}
