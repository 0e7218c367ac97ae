//! `category` sets the stream id prefix and `event_enum` the generated enum's name.
#![deny(warnings)]

use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Credited {
    amount: u64,
}

#[derive(Default)]
struct BankAccount {
    credit: u64,
}

#[aggregate(category = "ledger", event_enum = LedgerEntry)]
impl BankAccount {
    #[apply]
    fn credited(&mut self, e: &Credited) {
        self.credit += e.amount;
    }
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
struct Transferred;

#[derive(Default)]
struct TransferOrder;

#[aggregate]
impl TransferOrder {
    #[apply]
    fn transferred(&mut self, _: &Transferred) {}
}

fn main() {
    assert_eq!(BankAccount::CATEGORY, "ledger");
    assert_eq!(BankAccount::stream_id("42"), "ledger-42");
    let mut account = BankAccount::default();
    account.apply(&LedgerEntry::Credited(Credited { amount: 2 }));
    assert_eq!(account.credit, 2);

    // The defaults: the type's name in snake case, and the type's name followed by `Event`.
    assert_eq!(TransferOrder::CATEGORY, "transfer_order");
    let event: TransferOrderEvent = Transferred.into();
    assert!(matches!(event, TransferOrderEvent::Transferred(_)));
}
