use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Default)]
struct Account;

#[aggregate]
impl Clone for Account {
    fn clone(&self) -> Self {
        Account
    }
}

fn main() {}
