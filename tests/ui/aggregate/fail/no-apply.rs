use annals::prelude::*;

struct Open;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[command]
    fn open(&self, _cmd: &Open) {}
}

fn main() {}
