use annals::prelude::*;

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Closed;

struct Open;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[command]
    fn open(&self, _cmd: &Open) -> Opened {
        Opened
    }

    #[apply]
    fn opened(&mut self, _e: &Opened) {}

    #[apply]
    fn closed(&mut self, _e: &Closed) {}
}

fn main() {}
