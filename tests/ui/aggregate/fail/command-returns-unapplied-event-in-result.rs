use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Opened;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Closed;

struct Open;

#[derive(Debug, thiserror::Error)]
#[error("already open")]
struct AlreadyOpen;

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[command]
    fn open(&self, _cmd: &Open) -> Result<Vec<Closed>, AlreadyOpen> {
        Ok(vec![Closed])
    }

    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {}
