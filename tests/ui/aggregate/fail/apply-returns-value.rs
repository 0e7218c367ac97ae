use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &Opened) -> bool {
        true
    }
}

fn main() {}
