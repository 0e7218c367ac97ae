//! An upcaster that reads the old event's stored record: `UpcastFrom` instead of `From`.
#![deny(warnings)]

use annals::UpcastFrom;
use annals::prelude::*;

#[derive(Event, Deserialize)]
#[event(name = "Opened", version = 1)]
struct OpenedV1 {
    owner: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(version = 2, previous = OpenedV1)]
struct Opened {
    owner: String,
    by: Option<String>,
}

impl UpcastFrom<OpenedV1> for Opened {
    fn upcast_from(v1: OpenedV1, record: &RecordedEvent) -> Self {
        Self {
            owner: v1.owner,
            by: record.metadata.actor.clone(),
        }
    }
}

#[derive(Default)]
struct Account;

#[aggregate]
impl Account {
    #[apply]
    fn opened(&mut self, _e: &Opened) {}
}

fn main() {
    // Decoding a v1 payload needs the record: a bare payload says so.
    let bare = Opened::decode_stored("Opened", 1, r#"{"owner":"ann"}"#);
    assert!(matches!(bare, Some(Err(annals::DecodeErrorKind::RecordNeeded { .. }))));
    assert!(<AccountEvent as annals::EventSet>::reads_record());
}
