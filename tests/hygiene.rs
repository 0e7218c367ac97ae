//! The macros' output uses absolute paths only: every macro is used in a module that
//! shadows the prelude names generated code could otherwise pick up by accident.

#![allow(dead_code, non_camel_case_types, clippy::upper_case_acronyms)]

mod shadowed {
    use annals::prelude::*;

    // Everything generated code might name without a path, shadowed by something unusable.
    type Result = ();
    type Option = ();
    struct String;
    struct Vec;
    struct Box;
    struct Ok;
    struct Err;
    struct Some;
    struct None;
    trait Default {}
    trait From {}
    trait Clone {}
    trait Debug {}
    trait Send {}
    trait Sync {}
    trait Future {}
    trait Into {}

    #[derive(
        Event,
        Serialize,
        Deserialize,
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::cmp::PartialEq,
    )]
    pub struct Opened {
        pub owner: ::std::string::String,
    }

    #[derive(
        Event,
        Serialize,
        Deserialize,
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::cmp::PartialEq,
    )]
    #[event(name = "MoneyDeposited", version = 2, previous = DepositedV1, renamed)]
    pub struct Deposited {
        pub amount: u64,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(name = "Credited", version = 1)]
    pub struct DepositedV1 {
        pub units: u64,
    }

    impl ::core::convert::From<DepositedV1> for Deposited {
        fn from(v1: DepositedV1) -> Self {
            Deposited { amount: v1.units }
        }
    }

    #[derive(::core::clone::Clone)]
    pub struct Open {
        pub owner: ::std::string::String,
    }

    pub struct Deposit {
        pub amount: u64,
    }

    pub struct Audit;

    #[derive(::core::fmt::Debug, ::core::cmp::PartialEq, thiserror::Error)]
    pub enum Rejected {
        #[error("the account is not open")]
        NotOpen,
    }

    #[derive(::core::default::Default)]
    pub struct Account {
        pub owner: ::core::option::Option<::std::string::String>,
        pub balance: u64,
    }

    #[derive(::core::default::Default, Snapshot, Serialize, Deserialize)]
    pub struct Vault {
        pub total: u64,
    }

    #[aggregate(category = "hygienic_vault", snapshot_every = 3, snapshot_version = 1)]
    impl Vault {
        #[apply]
        fn deposited(&mut self, e: &Deposited) {
            self.total += e.amount;
        }
    }

    #[aggregate(category = "hygienic_account")]
    impl Account {
        #[command]
        fn open(&self, cmd: Open) -> ::core::option::Option<Opened> {
            match self.owner {
                ::core::option::Option::Some(_) => ::core::option::Option::None,
                ::core::option::Option::None => {
                    ::core::option::Option::Some(Opened { owner: cmd.owner })
                }
            }
        }

        #[command]
        fn deposit(
            &self,
            cmd: &Deposit,
        ) -> ::core::result::Result<::std::vec::Vec<Deposited>, Rejected> {
            if self.owner.is_none() {
                return ::core::result::Result::Err(Rejected::NotOpen);
            }
            ::core::result::Result::Ok(::std::vec![Deposited { amount: cmd.amount }])
        }

        #[command]
        async fn audit(&self, _: &Audit) -> ::core::result::Result<(), Rejected> {
            match self.owner {
                ::core::option::Option::Some(_) => ::core::result::Result::Ok(()),
                ::core::option::Option::None => ::core::result::Result::Err(Rejected::NotOpen),
            }
        }

        #[apply]
        fn opened(&mut self, e: &Opened) {
            self.owner = ::core::option::Option::Some(::core::clone::Clone::clone(&e.owner));
        }

        #[apply]
        fn deposited(&mut self, e: &Deposited) {
            self.balance += e.amount;
        }
    }

    #[derive(::core::default::Default, Serialize, Deserialize)]
    pub struct Owners {
        pub accounts: u64,
        pub deposited: u64,
    }

    #[projection(name = "hygienic_owners", of = Account)]
    impl Owners {
        #[handle(key = e.owner)]
        fn opened(&mut self, e: &Opened) {
            self.accounts += 1;
        }

        #[handle]
        fn deposited(
            &mut self,
            e: &Deposited,
            meta: &annals::projection::EventMeta,
        ) -> ::core::result::Result<annals::projection::Change, Rejected> {
            self.deposited += e.amount + meta.stream_version;
            ::core::result::Result::Ok(annals::projection::Change::Keep)
        }
    }
}

/// Primitive type names, shadowed apart: serde's derives (used above) name `str` and `u32`
/// unqualified, the annals macros do not.
mod shadowed_primitives {
    use annals::prelude::*;

    use super::shadowed::Deposited;

    struct str;
    struct u32;
    struct u64;
    struct bool;

    #[derive(Event)]
    #[event(name = "Ticked", version = 7)]
    pub struct Tick;

    // Every event (de)serialises; serde's derives cannot run among these shadowed names,
    // so by hand, with absolute paths.
    impl ::annals::serde::Serialize for Tick {
        fn serialize<S: ::annals::serde::Serializer>(
            &self,
            serializer: S,
        ) -> ::core::result::Result<S::Ok, S::Error> {
            serializer.serialize_unit()
        }
    }

    impl<'de> ::annals::serde::Deserialize<'de> for Tick {
        fn deserialize<D: ::annals::serde::Deserializer<'de>>(
            deserializer: D,
        ) -> ::core::result::Result<Self, D::Error> {
            <() as ::annals::serde::Deserialize>::deserialize(deserializer).map(|()| Tick)
        }
    }

    pub struct Count(pub ::core::primitive::u64);

    #[derive(::core::default::Default)]
    pub struct Counter {
        pub total: ::core::primitive::u64,
    }

    #[aggregate]
    impl Counter {
        #[command]
        fn count(&self, cmd: &Count) -> Deposited {
            Deposited { amount: cmd.0 }
        }

        #[apply]
        fn deposited(&mut self, e: &Deposited) {
            self.total += e.amount;
        }
    }
}

use annals::prelude::*;
use annals::testing::AggregateTest;
use shadowed::{
    Account, AccountEvent, Audit, Deposit, Deposited, Open, Opened, Rejected, Vault, VaultEvent,
};
use shadowed_primitives::{Count, Counter, Tick};

fn opened() -> Opened {
    Opened {
        owner: "ann".to_owned(),
    }
}

#[test]
fn commands_run_and_events_apply_in_a_shadowed_module() {
    assert_eq!(Account::CATEGORY, "hygienic_account");
    let event = AccountEvent::from(Deposited { amount: 3 });
    assert_eq!(
        (event.event_name(), event.event_version()),
        ("MoneyDeposited", 2)
    );

    let account = AggregateTest::<Account>::given_no_history()
        .when(Open {
            owner: "ann".to_owned(),
        })
        .then_expect_events([opened()]);
    assert_eq!(account.owner.as_deref(), Some("ann"));
    AggregateTest::<Account>::given([opened()])
        .when(Open {
            owner: "bob".to_owned(),
        })
        .then_expect_no_events();

    let account = AggregateTest::<Account>::given([
        AccountEvent::from(opened()),
        Deposited { amount: 2 }.into(),
    ])
    .when(Deposit { amount: 5 })
    .then_expect_events([Deposited { amount: 5 }]);
    assert_eq!(
        (account.owner.as_deref(), account.balance),
        (Some("ann"), 7)
    );
    AggregateTest::<Account>::given_no_history()
        .when(Deposit { amount: 5 })
        .then_expect_error(Rejected::NotOpen);

    AggregateTest::<Account>::given([opened()])
        .when(Audit)
        .then_expect_no_events();
    AggregateTest::<Account>::given_no_history()
        .when(Audit)
        .then_expect_error(Rejected::NotOpen);

    let payload = event.encode().unwrap();
    let decoded = AccountEvent::decode("MoneyDeposited", 2, payload.get()).unwrap();
    assert!(matches!(
        decoded,
        AccountEvent::Deposited(Deposited { amount: 3 })
    ));
    let old = annals::serde_json::value::RawValue::from_string(r#"{"units":4}"#.into()).unwrap();
    let upcast = AccountEvent::decode("Credited", 1, old.get()).unwrap();
    assert!(matches!(
        upcast,
        AccountEvent::Deposited(Deposited { amount: 4 })
    ));
}

#[test]
fn primitive_names_can_be_shadowed() {
    assert_eq!((Tick::NAME, Tick::VERSION), ("Ticked", 7));
    let counter = AggregateTest::<Counter>::given([Deposited { amount: 1 }])
        .when(Count(4))
        .then_expect_events([Deposited { amount: 4 }]);
    assert_eq!(counter.total, 5);
}

#[test]
fn snapshots_in_a_shadowed_module() {
    assert_eq!(Vault::SNAPSHOT_EVERY, Some(3));
    assert_ne!(Vault::SNAPSHOT_FINGERPRINT, 0);
    let mut vault = Vault::default();
    vault.apply(&VaultEvent::from(Deposited { amount: 4 }));
    let json = vault.encode_snapshot().unwrap().unwrap();
    let back = Vault::decode_snapshot(&json).unwrap().unwrap();
    assert_eq!(back.total, 4);
}
