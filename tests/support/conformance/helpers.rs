//! What the checks share: events to append, appends that must succeed, reads past the
//! read horizon, assertions, the contention hammer and snapshot doctoring.

use std::sync::Arc;

use annals::prelude::*;
use annals::{AppendResult, Checkpoint, SnapshotRecord, StoreError};
use chrono::Utc;
use serde_json::value::{RawValue, to_raw_value};

use crate::domain::ledger::v1;
use crate::domain::{Account, Deposit, Open};

pub(crate) fn event(name: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(name, 1, to_raw_value(&payload).expect("json")).expect("a valid event name")
}

pub(crate) fn numbered(n: u64) -> NewEvent {
    event("Numbered", serde_json::json!({ "n": n }))
}

pub(crate) async fn append_ok<S: EventStore>(
    store: &S,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendResult {
    store
        .append(stream, expected, events)
        .await
        .unwrap_or_else(|e| panic!("append to {stream}: {e}"))
}

const BARRIER: &str = "__barrier-";

/// Events of the test's own streams (barriers left out).
pub(crate) fn own(events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    events
        .into_iter()
        .filter(|e| !e.stream_id.starts_with(BARRIER))
        .collect()
}

/// Reads with `read` every 10 ms until `done` holds, failing after 30 s with `what`.
pub(crate) async fn settled<T, Fut>(
    what: &str,
    mut read: impl FnMut() -> Fut,
    done: impl Fn(&T) -> bool,
) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} after 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `schema::verify`'s report once it counts `events` events: like `read_all`, which it
/// reads through, it sees an event only past the store's read horizon (see [`all_events`];
/// a barrier would show up in the report, so this waits on the count instead).
pub(crate) async fn verify_settled<S: EventStore>(
    store: &S,
    events: u64,
) -> annals::schema::VerifyReport {
    settled(
        &format!("verify saw fewer than {events} events"),
        || async { annals::schema::verify(store).await.expect("verify") },
        |report| report.stored.values().map(|s| s.count).sum::<u64>() >= events,
    )
    .await
}

/// Every event the test appended, once all of them are past the store's read horizon.
///
/// `read_all` withholds events while an older transaction may still commit (on PostgreSQL,
/// any write transaction in the cluster). A barrier appended after the test's writes has a
/// newer transaction id than all of them: once it is visible, so is everything before it.
pub async fn all_events<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let barrier = numbered(0);
    let stream = format!("{BARRIER}{}", barrier.event_id);
    append_ok(
        store,
        &stream,
        ExpectedVersion::NoStream,
        vec![barrier.clone()],
    )
    .await;
    let events = settled(
        "barrier not visible",
        || async {
            store
                .read_all(Checkpoint::START, usize::MAX)
                .await
                .expect("read all")
        },
        |events| events.iter().any(|e| e.event_id == barrier.event_id),
    )
    .await;
    own(events)
}

pub(crate) fn json(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).expect("stored payload is JSON")
}

pub(crate) fn assert_wrong_version(
    result: Result<AppendResult, StoreError>,
    stream: &str,
    expected: ExpectedVersion,
    actual: u64,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!((s.as_str(), e, a), (stream, expected, actual));
        }
        other => panic!(
            "expected WrongExpectedVersion {{ {stream}, {expected}, {actual} }}, got {other:?}"
        ),
    }
}

/// Whether events of different streams share a `key`: the backend tests tell a commit by
/// it, to see that group commit wrote appends together.
pub fn streams_share<K: std::hash::Hash + Eq>(
    events: &[RecordedEvent],
    key: impl Fn(&RecordedEvent) -> K,
) -> bool {
    let mut streams = std::collections::HashMap::<K, &str>::new();
    events.iter().any(|event| {
        let first = *streams.entry(key(event)).or_insert(&event.stream_id);
        first != event.stream_id
    })
}

/// `tasks` tasks each run `commands` deposits on one account through `Repository::execute`,
/// then the balance, the deposit count and the versions (1..=N, no gap, no duplicate) are
/// checked. Returns how many attempts the commands took in all (conflicts are retried).
///
/// The tasks share two repositories, even tasks one and odd tasks the other, as two
/// processes would: within a repository commands on one aggregate take turns, between the
/// two they race, so the store's expected-version check decides.
pub async fn hammer_one_stream<S: EventStore>(
    store: S,
    tasks: u64,
    commands: u64,
    cache: usize,
) -> u64 {
    let repository = || {
        Arc::new(
            Repository::<Account, _>::new(store.clone())
                .with_max_attempts(100_000)
                .with_cache(cache),
        )
    };
    let repositories = [repository(), repository()];
    let accounts = Arc::clone(&repositories[0]);
    let _ = accounts
        .execute("hot", Open("Ann".into()))
        .await
        .expect("open");
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let accounts = Arc::clone(&repositories[usize::from(t % 2 == 1)]);
            tokio::spawn(async move {
                let mut attempts = 0u64;
                for i in 0..commands {
                    let done = accounts
                        .execute("hot", Deposit(t * 1000 + i + 1))
                        .await
                        .expect("deposit");
                    attempts += u64::from(done.attempts);
                }
                attempts
            })
        })
        .collect();
    let mut attempts = 0;
    for handle in handles {
        attempts += handle.await.expect("task");
    }
    let expected_balance: u64 = (0..tasks)
        .flat_map(|t| (0..commands).map(move |i| t * 1000 + i + 1))
        .sum();
    let account = accounts.load("hot").await.expect("load");
    assert_eq!(account.balance, expected_balance);
    assert_eq!(u64::from(account.deposits), tasks * commands);
    let versions: Vec<u64> = store
        .read_stream("account-hot", ..)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(
        versions,
        (1..=tasks * commands + 1).collect::<Vec<_>>(),
        "versions 1..=N without gap or duplicate"
    );
    assert!(attempts >= tasks * commands);
    attempts
}

/// The stream's snapshot once one at `version` or later is stored (snapshots are written
/// by a task of their own).
pub(crate) async fn snapshot_at<S: EventStore>(
    store: &S,
    stream: &str,
    version: u64,
) -> SnapshotRecord {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = store.read_snapshot(stream).await.expect("read snapshot");
        if let Some(snapshot) = found.filter(|s| s.version >= version) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot of {stream} at version {version} after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Waits until the stream's snapshot satisfies `ok`.
pub(crate) async fn snapshot_until<S: EventStore>(
    store: &S,
    stream: &str,
    ok: impl Fn(&SnapshotRecord) -> bool,
) -> SnapshotRecord {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = store.read_snapshot(stream).await.expect("read snapshot");
        if let Some(snapshot) = found.filter(&ok) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "snapshot of {stream} not rewritten after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A snapshot of `ledger-{id}` with a made-up state, to tell whether a load used it.
pub(crate) fn doctored(id: &str, version: u64, fingerprint: u64, state: &str) -> SnapshotRecord {
    SnapshotRecord {
        stream_id: format!("ledger-{id}"),
        version,
        fingerprint,
        state: state.to_owned(),
        taken_at: Utc::now(),
    }
}

/// Appends twelve `Credited { amount: 1 }` to `ledger-{id}` directly, without the
/// repository, so no snapshot is written in the background; `pause` between them.
pub(crate) async fn twelve_credits<S: EventStore>(
    store: &S,
    id: &str,
    pause: std::time::Duration,
) -> Repository<v1::Ledger, S> {
    let stream = format!("ledger-{id}");
    for v in 0..12 {
        let credit = event("Credited", serde_json::json!({ "amount": 1 }));
        append_ok(store, &stream, ExpectedVersion::Exact(v), vec![credit]).await;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Repository::<v1::Ledger, _>::new(store.clone())
}

pub(crate) const NO_PAUSE: std::time::Duration = std::time::Duration::ZERO;

/// Opens an account and returns where its event is in the global order.
pub(crate) async fn open<S: EventStore>(store: &S, id: &str, owner: &str) -> Checkpoint {
    Repository::<Account, _>::new(store.clone())
        .execute(id, Open(owner.to_owned()))
        .await
        .expect("open")
        .last_checkpoint
        .expect("an event")
}

/// Catches `runner` up to `last`: on PostgreSQL, an event becomes readable once every
/// transaction that could precede it has ended, which tests running beside this one delay.
pub(crate) async fn up_to<S: annals::projection::ProjectionStore>(
    runner: &annals::projection::Runner<S>,
    last: Checkpoint,
) {
    runner
        .catch_up_to(last, std::time::Duration::from_secs(10))
        .await
        .expect("caught up");
}

/// Deposits and returns where the deposit is in the global order.
pub(crate) async fn deposit<S: EventStore>(store: &S, id: &str, amount: u64) -> Option<Checkpoint> {
    Repository::<Account, _>::new(store.clone())
        .execute(id, Deposit(amount))
        .await
        .expect("deposit")
        .last_checkpoint
}
