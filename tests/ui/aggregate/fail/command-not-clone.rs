use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

struct Open;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[command]
    fn open(&self, _cmd: Open) -> Opened {
        Opened
    }

    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
