use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Default)]
struct Account;

struct Ledger<T>(T);

#[aggregate]
impl<T> Ledger<T> {
    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
