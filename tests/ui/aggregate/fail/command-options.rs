use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

struct Open;
struct Close;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[command(create, create)]
    fn open(&self, _cmd: &Open) -> Opened {
        Opened
    }

    #[command(creates)]
    fn close(&self, _cmd: &Close) {}

    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
