use annals::prelude::*;

mod v1 {
    use annals::prelude::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    pub struct Opened;
}

mod v2 {
    use annals::prelude::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    #[event(name = "Opened", version = 1)]
    pub struct Reopened;
}

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &v1::Opened) {}

    #[apply]
    fn reopened(&mut self, _e: &v2::Reopened) {}
}

fn main() {}
