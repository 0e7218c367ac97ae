//! The event schema: every `#[derive(Event)]` type of the program, and a check of a store against it.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Checkpoint, Event, EventStore, StoreError};

/// One event type of the program, registered by `#[derive(Event)]`.
#[derive(Clone, Copy)]
pub struct EventType {
    /// The stored name.
    pub name: &'static str,
    /// The schema version.
    pub version: u32,
    /// The Rust type's name as written in its definition.
    pub rust_type: &'static str,
    /// The module that defines it (`module_path!()`).
    pub module: &'static str,
    chain: fn() -> Vec<(&'static str, u32)>,
}

impl EventType {
    #[doc(hidden)]
    pub const fn new<T: Event>(rust_type: &'static str, module: &'static str) -> Self {
        Self {
            name: T::NAME,
            version: T::VERSION,
            rust_type,
            module,
            chain: crate::event::chain_of::<T>,
        }
    }

    /// The (name, version) of this type and of every previous version it upcasts from,
    /// newest first.
    pub fn chain(&self) -> Vec<(&'static str, u32)> {
        (self.chain)()
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventType")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("rust_type", &self.rust_type)
            .field("module", &self.module)
            .field("chain", &self.chain())
            .finish()
    }
}

inventory::collect!(EventType);

/// Every event type of the program, sorted by name, version, module and Rust type.
///
/// ```
/// use annals::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize)]
/// #[event(name = "Rang", version = 1)]
/// struct RangV1 {}
///
/// #[derive(Event, Serialize, Deserialize)]
/// #[event(version = 2, previous = RangV1)]
/// struct Rang { times: u32 }
///
/// impl From<RangV1> for Rang {
///     fn from(_: RangV1) -> Self { Rang { times: 1 } }
/// }
///
/// for event in annals::schema::events() {
///     println!("{} v{} ({}::{}): {:?}", event.name, event.version, event.module, event.rust_type, event.chain());
/// }
/// let rang = annals::schema::events().into_iter().find(|e| e.name == "Rang" && e.version == 2).unwrap();
/// assert_eq!(rang.chain(), [("Rang", 2), ("Rang", 1)]);
/// ```
pub fn events() -> Vec<&'static EventType> {
    let mut all: Vec<_> = inventory::iter::<EventType>.into_iter().collect();
    all.sort_by_key(|e| (e.name, e.version, e.module, e.rust_type));
    all
}

/// Whether a stored (name, version) is decodable by some registered event type: the pair is
/// in the chain of at least one of them.
pub fn is_known(name: &str, version: u32) -> bool {
    events()
        .iter()
        .any(|e| e.chain().iter().any(|&(n, v)| v == version && n == name))
}

/// What [`verify`] found: every distinct (name, version) in the store, with the number of
/// events and the first global position of each, and those no registered type decodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct VerifyReport {
    /// Every distinct (name, version) stored, with its count and first position.
    pub stored: BTreeMap<(String, u32), StoredPair>,
    /// The pairs in `stored` that no registered event type decodes, sorted.
    pub unknown: Vec<(String, u32)>,
}

/// The events of one stored (name, version) pair in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPair {
    /// How many events are stored with this (name, version).
    pub count: u64,
    /// The global position of the first of them.
    pub first_position: u64,
}

/// The tally of one stored (name, version), by its old name.
#[deprecated(note = "renamed to `StoredPair`: `annals::StoredEvent` is the stored event itself")]
pub type StoredEvent = StoredPair;

impl VerifyReport {
    /// True when every stored (name, version) is decodable.
    pub fn is_ok(&self) -> bool {
        self.unknown.is_empty()
    }
}

/// Reads every event of `store` (in pages, through `read_all`) and reports the stored
/// (name, version) pairs that no registered event type decodes. Like `read_all`, it sees
/// an event once the event is past the store's read horizon: on PostgreSQL, an event
/// committed while an older write transaction in the cluster is still running is counted
/// by the next verify after that transaction ends.
pub async fn verify<S: EventStore>(store: &S) -> Result<VerifyReport, StoreError> {
    const PAGE: usize = 1_000;
    let mut report = VerifyReport::default();
    let mut after = Checkpoint::START;
    loop {
        let page = store.read_all(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.checkpoint();
        for record in &page {
            report
                .stored
                .entry((record.name.clone(), record.version))
                .and_modify(|s| s.count += 1)
                .or_insert(StoredPair {
                    count: 1,
                    first_position: record.position,
                });
        }
        if page.len() < PAGE {
            break;
        }
    }
    let known = events();
    report.unknown = report
        .stored
        .keys()
        .filter(|(name, version)| {
            !known
                .iter()
                .any(|e| e.chain().iter().any(|&(n, v)| v == *version && n == name))
        })
        .cloned()
        .collect();
    Ok(report)
}
