//! Private event and command types in a module: the generated `pub` enum compiles without
//! warnings (`#[allow(private_interfaces)]`), and the aggregate is usable from outside.
#![deny(warnings)]

mod bank {
    use annals::prelude::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    struct Opened {
        owner: String,
    }

    pub struct Open {
        pub owner: String,
    }

    #[derive(Default)]
    pub struct Account {
        owner: Option<String>,
    }

    impl Account {
        pub fn owner(&self) -> Option<&str> {
            self.owner.as_deref()
        }
    }

    #[aggregate]
    impl Account {
        #[command]
        fn open(&self, cmd: &Open) -> Opened {
            Opened {
                owner: cmd.owner.clone(),
            }
        }

        #[apply]
        fn opened(&mut self, e: &Opened) {
            self.owner = Some(e.owner.clone());
        }
    }
}

pub mod public {
    use annals::prelude::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    struct Pinged;

    /// A public aggregate whose events are private.
    #[derive(Default)]
    pub struct Pinger {
        pings: u32,
    }

    impl Pinger {
        /// How often it was pinged.
        pub fn pings(&self) -> u32 {
            self.pings
        }
    }

    #[aggregate]
    impl Pinger {
        #[apply]
        fn pinged(&mut self, _: &Pinged) {
            self.pings += 1;
        }
    }
}

use annals::EventSet;
use annals::testing::AggregateTest;

fn main() {
    let events = AggregateTest::<bank::Account>::given_no_history()
        .when(bank::Open {
            owner: "ann".into(),
        })
        .into_result()
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.event_name()).collect::<Vec<_>>(),
        ["Opened"]
    );
    let account = AggregateTest::<bank::Account>::given(events).when(bank::Open {
        owner: "bob".into(),
    });
    let events = account.into_result().unwrap();
    assert_eq!(
        events.iter().map(|e| e.event_name()).collect::<Vec<_>>(),
        ["Opened"]
    );

    let mut account = bank::Account::default();
    annals::Aggregate::apply(&mut account, &events[0]);
    assert_eq!(account.owner(), Some("bob"));

    let pinger = public::Pinger::default();
    assert_eq!(pinger.pings(), 0);
    let no_events: Vec<public::PingerEvent> = Vec::new();
    assert!(no_events.is_empty());
}
