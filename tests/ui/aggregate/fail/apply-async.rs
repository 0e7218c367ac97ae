use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    async fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
