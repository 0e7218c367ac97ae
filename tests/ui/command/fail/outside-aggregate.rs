use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

struct Open;

#[derive(Default)]
struct Account;

impl Account {
    #[command]
    fn open(&self, _cmd: &Open) -> Opened {
        Opened
    }
}

fn main() {}
