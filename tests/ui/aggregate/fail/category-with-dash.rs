use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Default)]
struct Account;

#[aggregate(category = "bank-account")]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
