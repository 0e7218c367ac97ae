//! Orders placed, items added, orders cancelled; and the read side beside them: a
//! `customer_stats` document per customer, fed by every order stream, and an
//! `order_summaries` SQL table, both kept by an async runner. The example reads its own
//! writes after a command, and rebuilds `customer_stats` after a bug fix in a handler.
//!
//! Run it with `cargo run --example orders [path/to/orders.db]` (a fresh file in the
//! temporary directory by default).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use annals::SqliteStore;
use annals::prelude::*;
use annals::projection::{Documents, Runner};
use annals::sqlx::{self, Sqlite, Transaction};

/// An order was placed by a customer.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct OrderPlaced {
    /// Who placed it.
    pub customer: String,
}

/// An item was added to an open order.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct ItemAdded {
    /// The order's customer, so that views keyed by customer need no other read.
    pub customer: String,
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price of one, in cents.
    pub unit_price: u64,
}

/// The order was cancelled; its items are refunded.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct OrderCancelled {
    /// The order's customer.
    pub customer: String,
    /// Why.
    pub reason: String,
}

/// Places an order; the command that starts an order's stream.
pub struct PlaceOrder {
    /// Who places it.
    pub customer: String,
}

/// Adds an item to an open order.
pub struct AddItem {
    /// The product.
    pub sku: String,
    /// How many; zero is refused.
    pub quantity: u32,
    /// Price of one, in cents.
    pub unit_price: u64,
}

/// Cancels an open order.
pub struct Cancel {
    /// Why.
    pub reason: String,
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    /// `PlaceOrder` on an order that exists.
    #[error("the order is already placed")]
    AlreadyPlaced,
    /// A command on an order that was never placed.
    #[error("no such order")]
    NotPlaced,
    /// A change to a cancelled order.
    #[error("the order is cancelled")]
    Cancelled,
    /// An item of quantity zero.
    #[error("a quantity must be positive")]
    ZeroQuantity,
}

/// An order's state, from its events.
#[derive(Debug, Default)]
pub struct Order {
    customer: Option<String>,
    cancelled: bool,
}

impl Order {
    fn open_for(&self) -> Result<&str, OrderError> {
        match (&self.customer, self.cancelled) {
            (None, _) => Err(OrderError::NotPlaced),
            (Some(_), true) => Err(OrderError::Cancelled),
            (Some(customer), false) => Ok(customer),
        }
    }
}

#[aggregate(category = "order")]
impl Order {
    #[command(create)]
    fn place(&self, cmd: &PlaceOrder) -> Result<OrderPlaced, OrderError> {
        if self.customer.is_some() {
            return Err(OrderError::AlreadyPlaced);
        }
        Ok(OrderPlaced {
            customer: cmd.customer.clone(),
        })
    }

    #[command]
    fn add_item(&self, cmd: &AddItem) -> Result<ItemAdded, OrderError> {
        let customer = self.open_for()?;
        if cmd.quantity == 0 {
            return Err(OrderError::ZeroQuantity);
        }
        Ok(ItemAdded {
            customer: customer.to_owned(),
            sku: cmd.sku.clone(),
            quantity: cmd.quantity,
            unit_price: cmd.unit_price,
        })
    }

    #[command]
    fn cancel(&self, cmd: &Cancel) -> Result<OrderCancelled, OrderError> {
        let customer = self.open_for()?;
        Ok(OrderCancelled {
            customer: customer.to_owned(),
            reason: cmd.reason.clone(),
        })
    }

    #[apply]
    fn placed(&mut self, e: &OrderPlaced) {
        self.customer = Some(e.customer.clone());
    }

    #[apply]
    fn item_added(&mut self, _: &ItemAdded) {}

    #[apply]
    fn cancelled(&mut self, _: &OrderCancelled) {
        self.cancelled = true;
    }
}

/// Stands for the release that fixed the refund bug: the first `cancelled` handler
/// forgot to take a cancelled order's items off what the customer spent.
static REFUND_FIX_DEPLOYED: AtomicBool = AtomicBool::new(false);

/// What each customer ordered and spent: one document per customer, gathering the events
/// of all of their orders. `of = Order`: adding an event to `Order` makes this fail to
/// compile until it is handled or ignored here.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
pub struct CustomerStats {
    /// Orders placed.
    pub orders: u32,
    /// Orders cancelled.
    pub cancelled: u32,
    /// Cents spent on orders not cancelled.
    pub spent: u64,
    /// Each open order's total so far, to refund it on cancellation.
    pub open: std::collections::BTreeMap<String, u64>,
}

#[projection(name = "customer_stats", of = Order)]
impl CustomerStats {
    #[handle(key = e.customer)]
    fn placed(&mut self, e: &OrderPlaced, meta: &annals::projection::EventMeta) {
        self.orders += 1;
        self.open.insert(meta.stream_id.clone(), 0);
    }

    #[handle(key = e.customer)]
    fn item_added(&mut self, e: &ItemAdded, meta: &annals::projection::EventMeta) {
        let cost = u64::from(e.quantity) * e.unit_price;
        self.spent += cost;
        *self.open.entry(meta.stream_id.clone()).or_default() += cost;
    }

    #[handle(key = e.customer)]
    fn cancelled(&mut self, e: &OrderCancelled, meta: &annals::projection::EventMeta) {
        self.cancelled += 1;
        let total = self.open.remove(&meta.stream_id).unwrap_or(0);
        if REFUND_FIX_DEPLOYED.load(Ordering::Relaxed) {
            self.spent -= total;
        }
    }
}

/// One row per order, in a table of its own: queried with plain SQL.
#[derive(Default)]
pub struct OrderSummaries;

#[projection(name = "order_summaries", of = Order)]
impl OrderSummaries {
    #[setup]
    async fn setup(tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS order_summaries (order_id TEXT PRIMARY KEY, \
             customer TEXT NOT NULL, items INTEGER NOT NULL DEFAULT 0, \
             total INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'open')",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[reset]
    async fn reset(tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM order_summaries")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[handle]
    async fn placed(
        tx: &mut Transaction<'_, Sqlite>,
        e: &OrderPlaced,
        meta: &annals::projection::EventMeta,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO order_summaries (order_id, customer) VALUES (?, ?)")
            .bind(&meta.stream_id)
            .bind(&e.customer)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[handle]
    async fn item_added(
        tx: &mut Transaction<'_, Sqlite>,
        e: &ItemAdded,
        meta: &annals::projection::EventMeta,
    ) -> Result<(), sqlx::Error> {
        let cost = i64::from(e.quantity) * e.unit_price as i64;
        sqlx::query(
            "UPDATE order_summaries SET items = items + ?, total = total + ? WHERE order_id = ?",
        )
        .bind(i64::from(e.quantity))
        .bind(cost)
        .bind(&meta.stream_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[handle]
    async fn cancelled(
        tx: &mut Transaction<'_, Sqlite>,
        _: &OrderCancelled,
        meta: &annals::projection::EventMeta,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE order_summaries SET status = 'cancelled' WHERE order_id = ?")
            .bind(&meta.stream_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

fn item(sku: &str, quantity: u32, unit_price: u64) -> AddItem {
    AddItem {
        sku: sku.to_owned(),
        quantity,
        unit_price,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("annals-orders-{}.db", std::process::id())),
        std::path::PathBuf::from,
    );
    let store = SqliteStore::open(&path).await?;
    let orders = Repository::<Order, _>::new(store.clone());
    let wait = Duration::from_secs(5);

    // Every registered projection, async: catch-up, then live.
    let running = Runner::new(store.clone()).all().start();

    orders
        .execute(
            "1",
            PlaceOrder {
                customer: "ada".into(),
            },
        )
        .await?;
    orders.execute("1", item("tea", 2, 450)).await?;
    orders
        .execute(
            "2",
            PlaceOrder {
                customer: "ada".into(),
            },
        )
        .await?;
    orders.execute("2", item("cups", 6, 300)).await?;
    orders
        .execute(
            "3",
            PlaceOrder {
                customer: "bob".into(),
            },
        )
        .await?;
    let done = orders.execute("3", item("tea", 1, 450)).await?;

    // Read your writes: wait until the projections have applied the last event.
    running.wait_for(done.last_checkpoint, wait).await?;
    let stats = Documents::<CustomerStats, _>::new(store.clone());
    let ada = stats.get("ada").await?.ok_or("no stats for ada")?;
    println!("ada: {} orders, {} cents spent", ada.orders, ada.spent);
    assert_eq!((ada.orders, ada.spent), (2, 2 * 450 + 6 * 300));

    // A refusal records nothing, and the views do not move.
    let refused = orders.execute("9", item("tea", 1, 450)).await;
    let refused = refused.err().and_then(|e| e.rejection().cloned());
    assert_eq!(refused, Some(OrderError::NotPlaced));

    // The cancellation meets the handler's bug: the refund is missing.
    let done = orders
        .execute(
            "2",
            Cancel {
                reason: "changed my mind".into(),
            },
        )
        .await?;
    running.wait_for(done.last_checkpoint, wait).await?;
    let ada = stats.get("ada").await?.ok_or("no stats for ada")?;
    println!(
        "ada after cancelling order 2, before the fix: {} cents spent",
        ada.spent
    );
    assert_eq!(ada.spent, 2 * 450 + 6 * 300, "the bug: no refund");

    // The fix ships; a rebuild replays history through it, beside the live documents,
    // which readers keep seeing until the new ones have caught up.
    REFUND_FIX_DEPLOYED.store(true, Ordering::Relaxed);
    let rebuilt = Runner::new(store.clone())
        .rebuild::<CustomerStats>(|progress| {
            println!(
                "rebuilding customer_stats: {} of {} events",
                progress.done, progress.total
            )
        })
        .await?;
    println!("rebuilt into generation {}", rebuilt.generation);
    let ada = stats.get("ada").await?.ok_or("no stats for ada")?;
    println!(
        "ada after the rebuild: {} cents spent, {} cancelled",
        ada.spent, ada.cancelled
    );
    assert_eq!((ada.spent, ada.cancelled), (2 * 450, 1));

    // The SQL projection, read with plain SQL.
    let rows: Vec<(String, String, i64, i64, String)> = sqlx::query_as(
        "SELECT order_id, customer, items, total, status FROM order_summaries ORDER BY order_id",
    )
    .fetch_all(store.pool())
    .await?;
    for (order, customer, items, total, status) in &rows {
        println!("{order}: {customer}, {items} items, {total} cents, {status}");
    }
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].4, "cancelled");

    for status in running.status().await? {
        println!(
            "{} v{}: {} events behind",
            status.name, status.version, status.lag_events
        );
    }
    running.shutdown().await?;
    store.close().await;
    Ok(())
}
