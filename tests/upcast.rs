//! Upcasting: stored old versions decode through the chain of `From` impls, renames and
//! upcasts into another event type included; tolerant reading; the schema registry.

use annals::prelude::*;
use annals::{DecodeErrorKind, ExpectedVersion, MemoryStore, RepositoryError};
use serde_json::value::RawValue;

/// v1: the amount in whole units.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "Credited", version = 1)]
pub struct CreditedV1 {
    /// Whole units credited.
    pub units: u64,
}

/// v2: renamed to `MoneyDeposited`, amount in cents.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "MoneyDeposited", version = 2, previous = CreditedV1, renamed)]
pub struct MoneyDepositedV2 {
    /// Cents deposited.
    pub cents: u64,
}

impl From<CreditedV1> for MoneyDepositedV2 {
    fn from(v1: CreditedV1) -> Self {
        Self {
            cents: v1.units * 100,
        }
    }
}

/// v3, current: a memo, missing from older payloads, defaults to empty.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "MoneyDeposited", version = 3, previous = MoneyDepositedV2)]
pub struct MoneyDeposited {
    /// Cents deposited.
    pub cents: u64,
    /// A note, empty for events stored before it existed.
    #[serde(default)]
    pub memo: String,
}

impl From<MoneyDepositedV2> for MoneyDeposited {
    fn from(v2: MoneyDepositedV2) -> Self {
        Self {
            cents: v2.cents,
            memo: String::new(),
        }
    }
}

/// An old event that is now recorded as a withdrawal of the opposite sign: its chain ends
/// at `MoneyWithdrawn`, a different current event type.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "Charged", version = 1)]
pub struct Charged {
    /// Cents charged.
    pub cents: u64,
}

/// The current withdrawal event, which stored `Charged` events upcast to.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(version = 2, previous = Charged, renamed)]
pub struct MoneyWithdrawn {
    /// Cents withdrawn.
    pub cents: u64,
}

impl From<Charged> for MoneyWithdrawn {
    fn from(c: Charged) -> Self {
        Self { cents: c.cents }
    }
}

/// A wallet whose balance is the sum of its deposits and withdrawals.
#[derive(Default, Debug)]
pub struct Wallet {
    /// The balance in cents.
    pub cents: i64,
    /// The memos of its deposits, in order.
    pub memos: Vec<String>,
}

/// Deposits cents with a memo.
#[derive(Debug, Clone)]
pub struct Deposit(pub u64, pub String);

#[aggregate]
impl Wallet {
    #[command]
    fn deposit(&self, cmd: &Deposit) -> MoneyDeposited {
        MoneyDeposited {
            cents: cmd.0,
            memo: cmd.1.clone(),
        }
    }

    #[apply]
    fn deposited(&mut self, e: &MoneyDeposited) {
        self.cents += e.cents as i64;
        self.memos.push(e.memo.clone());
    }

    #[apply]
    fn withdrawn(&mut self, e: &MoneyWithdrawn) {
        self.cents -= e.cents as i64;
    }
}

fn raw(name: &str, version: u32, json: &str) -> NewEvent {
    NewEvent::new(name, version, RawValue::from_string(json.into()).unwrap())
        .expect("a valid event name")
}

async fn store_with(events: Vec<NewEvent>) -> MemoryStore {
    let store = MemoryStore::new();
    store
        .append("wallet-w", ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn every_version_of_a_chain_loads_as_the_current_type() {
    let store = store_with(vec![
        raw("Credited", 1, r#"{"units":2}"#),
        raw("MoneyDeposited", 2, r#"{"cents":30}"#),
        raw("MoneyDeposited", 3, r#"{"cents":4,"memo":"tip"}"#),
        raw("Charged", 1, r#"{"cents":50}"#),
        raw("MoneyWithdrawn", 2, r#"{"cents":1}"#),
    ])
    .await;
    let wallets = Repository::<Wallet, _>::new(store);
    let wallet = wallets.load("w").await.unwrap();
    assert_eq!(wallet.state().cents, 200 + 30 + 4 - 50 - 1);
    assert_eq!(wallet.state().memos, ["", "", "tip"]);
    // New events are written at the current version only.
    let done = wallets
        .execute("w", Deposit(1, "new".into()))
        .await
        .unwrap();
    assert_eq!(done.stream_version, 6);
    let history = wallets.history("w").await.unwrap();
    assert_eq!(
        (history[5].record.name.as_str(), history[5].record.version),
        ("MoneyDeposited", 3)
    );
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_missing_fields_use_serde_defaults() {
    let store = store_with(vec![
        raw("MoneyDeposited", 3, r#"{"cents":5,"currency":"EUR"}"#),
        raw("Credited", 1, r#"{"units":1,"legacy":true}"#),
    ])
    .await;
    let wallet = Repository::<Wallet, _>::new(store).load("w").await.unwrap();
    assert_eq!(wallet.state().cents, 105);
    assert_eq!(wallet.state().memos, ["", ""]);
}

#[tokio::test]
async fn a_version_newer_than_the_code_is_a_typed_error_never_skipped() {
    let store = store_with(vec![
        raw("MoneyDeposited", 3, r#"{"cents":5}"#),
        raw("MoneyDeposited", 4, r#"{"cents":5}"#),
    ])
    .await;
    let err = Repository::<Wallet, _>::new(store)
        .load("w")
        .await
        .unwrap_err();
    let RepositoryError::Decode(e) = err else {
        panic!("expected a decode error, got {err:?}")
    };
    assert_eq!(
        (
            e.stream.as_str(),
            e.stream_version,
            e.name.as_str(),
            e.version
        ),
        ("wallet-w", 2, "MoneyDeposited", 4)
    );
    assert!(matches!(e.kind, DecodeErrorKind::UnknownEvent));
}

#[tokio::test]
async fn a_malformed_old_payload_is_a_payload_error() {
    let store = store_with(vec![raw("Credited", 1, r#"{"cents":5}"#)]).await;
    let err = Repository::<Wallet, _>::new(store)
        .load("w")
        .await
        .unwrap_err();
    let RepositoryError::Decode(e) = err else {
        panic!("expected a decode error, got {err:?}")
    };
    assert!(matches!(e.kind, DecodeErrorKind::Payload(_)), "{e}");
}

#[test]
fn the_registry_lists_every_event_type_with_its_chain() {
    let events = annals::schema::events();
    let deposited = events
        .iter()
        .find(|e| e.rust_type == "MoneyDeposited")
        .unwrap();
    assert_eq!((deposited.name, deposited.version), ("MoneyDeposited", 3));
    assert_eq!(
        deposited.chain(),
        [
            ("MoneyDeposited", 3),
            ("MoneyDeposited", 2),
            ("Credited", 1)
        ]
    );
    let charged = events.iter().find(|e| e.rust_type == "Charged").unwrap();
    assert_eq!(charged.chain(), [("Charged", 1)]);
    assert!(annals::schema::is_known("Credited", 1));
    assert!(!annals::schema::is_known("Credited", 2));
}

#[tokio::test]
async fn verify_reports_the_stored_events_no_type_decodes() {
    let store = store_with(vec![
        raw("Credited", 1, r#"{"units":2}"#),
        raw("Credited", 1, r#"{"units":3}"#),
        raw("MoneyDeposited", 4, r#"{"cents":5}"#),
        raw("Vanished", 1, "{}"),
    ])
    .await;
    let report = annals::schema::verify(&store).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(
        report.unknown,
        [
            ("MoneyDeposited".to_string(), 4),
            ("Vanished".to_string(), 1)
        ]
    );
    let credited = report.stored[&("Credited".to_string(), 1)];
    assert_eq!((credited.count, credited.first_position), (2, 1));

    let clean = store_with(vec![raw("Charged", 1, r#"{"cents":1}"#)]).await;
    assert!(annals::schema::verify(&clean).await.unwrap().is_ok());
}
