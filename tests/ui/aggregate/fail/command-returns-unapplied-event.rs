use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Closed;

struct Open;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[command]
    fn open(&self, _cmd: &Open) -> Closed {
        Closed
    }

    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
