use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

struct Open;

#[derive(Default)]
struct Account;

#[aggregate(event_enum = "AccountEvents")]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
