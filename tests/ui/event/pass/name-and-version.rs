//! `#[derive(Event)]` defaults to the type's name and version 1; `#[event(...)]` sets both,
//! in one attribute or several.
#![deny(warnings)]

use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
struct Opened;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "account.deposited", version = 3)]
struct Deposited {
    amount: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(version = 2)]
#[event(name = "AccountClosed")]
enum Closed {
    ByOwner,
    ByBank { reason: String },
}

fn main() {
    assert_eq!((Opened::NAME, Opened::VERSION), ("Opened", 1));
    assert_eq!(
        (Deposited::NAME, Deposited::VERSION),
        ("account.deposited", 3)
    );
    assert_eq!((Closed::NAME, Closed::VERSION), ("AccountClosed", 2));

    let event = NewEvent::from_event(&Deposited { amount: 7 }).unwrap();
    assert_eq!(
        (event.name.as_str(), event.version),
        ("account.deposited", 3)
    );
    assert_eq!(event.payload.get(), r#"{"amount":7}"#);
    for closed in [
        Closed::ByOwner,
        Closed::ByBank {
            reason: "fraud".into(),
        },
    ] {
        let event = NewEvent::from_event(&closed).unwrap();
        assert_eq!(event.name, "AccountClosed");
    }
}
