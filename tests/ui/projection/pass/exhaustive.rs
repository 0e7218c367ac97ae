use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Placed {
    customer: String,
    total: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Cancelled;

#[derive(Default)]
struct Order;

#[aggregate]
impl Order {
    #[apply]
    fn placed(&mut self, _: &Placed) {}

    #[apply]
    fn cancelled(&mut self, _: &Cancelled) {}
}

/// Handles one event of `Order` and ignores the other: compiles.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
struct Spent {
    total: u64,
}

#[projection(name = "spent", version = 3, of = Order, ignore(Cancelled))]
impl Spent {
    #[handle(key = e.customer)]
    fn placed(&mut self, e: &Placed) {
        self.total += e.total;
    }
}

fn main() {
    use annals::projection::Projection;
    assert_eq!((Spent::NAME, Spent::VERSION), ("spent", 3));
    assert_eq!(Spent::consumes(), [("Placed", 1)]);
    assert!(!Spent::READS_METADATA);
}
