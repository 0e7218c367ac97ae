use annals::prelude::*;

mod v1 {
    use annals::prelude::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    pub struct Opened;
}

mod v2 {
    use annals::prelude::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    #[event(name = "OpenedV2")]
    pub struct Opened;
}

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &v1::Opened) {}

    #[apply]
    fn opened_v2(&mut self, _e: &v2::Opened) {}
}

fn main() {}
