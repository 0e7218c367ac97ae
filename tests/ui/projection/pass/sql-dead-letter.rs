use annals::prelude::*;
use sqlx::{Sqlite, Transaction};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed;

struct Orders;

#[projection(on_error = "dead_letter")]
impl Orders {
    #[handle]
    async fn placed(tx: &mut Transaction<'_, Sqlite>, _: &Placed) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE orders SET open = open + 1").execute(&mut **tx).await?;
        Ok(())
    }
}

fn main() {}
