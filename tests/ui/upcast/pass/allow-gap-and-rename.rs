use annals::prelude::*;

#[derive(Event, Serialize, Deserialize, Debug)]
#[event(name = "Credited", version = 1)]
struct CreditedV1 {
    units: u64,
}

// v2 was never released: `allow_gap`. The stored name changed: `renamed`.
#[derive(Event, Serialize, Deserialize, Debug)]
#[event(name = "MoneyDeposited", version = 3, previous = CreditedV1, renamed, allow_gap)]
struct MoneyDeposited {
    cents: u64,
}

impl From<CreditedV1> for MoneyDeposited {
    fn from(v1: CreditedV1) -> Self {
        Self { cents: v1.units * 100 }
    }
}

fn main() {
    let payload = r#"{"units":2}"#;
    let decoded = MoneyDeposited::decode_stored("Credited", 1, payload);
    assert_eq!(decoded.unwrap().unwrap().cents, 200);
    assert!(MoneyDeposited::decode_stored("Credited", 2, payload).is_none());
}
