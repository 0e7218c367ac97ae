use annals::prelude::*;
use sqlx::{Sqlite, Transaction};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed {
    customer: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Cancelled;

#[derive(Default, Serialize, Deserialize)]
struct Orders {
    open: u32,
}

#[projection]
impl Orders {
    #[handle]
    async fn placed(tx: &mut Transaction<'_, Sqlite>, e: &Placed) -> Result<(), sqlx::Error> {
        let _ = (tx, e);
        Ok(())
    }

    #[handle]
    fn cancelled(&mut self, _: &Cancelled) {
        self.open -= 1;
    }
}

fn main() {}
