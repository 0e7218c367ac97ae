//! Repository behaviour that does not depend on the backend: retries, rejections,
//! commands that decide nothing, and the given/when/then kit.

use annals::prelude::*;
use annals::testing::AggregateTest;
use annals::{MemoryStore, RepositoryError, StoreError, StoreSession, VersionRange};
use annals_tests::domain::{Account, AccountError, Deposit, Deposited, Open, Opened};

#[tokio::test]
async fn a_rejected_command_records_nothing() {
    let store = MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    match accounts.execute("r1", Deposit(5)).await {
        Err(ExecuteError::Rejected(AccountError::NotOpen)) => {}
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(store.stream_version("account-r1").await.unwrap(), 0);
    let done = accounts.execute("r1", Open("Ann".into())).await.unwrap();
    assert_eq!(
        (done.stream_version, done.attempts, done.events.len()),
        (1, 1, 1)
    );
    let again = accounts
        .execute("r1", Open("Ann".into()))
        .await
        .unwrap_err();
    assert_eq!(again.rejection(), Some(&AccountError::AlreadyOpen));
    assert_eq!(
        again.to_string(),
        "command rejected: the account is already open"
    );
}

#[tokio::test]
async fn a_conflict_reloads_and_decides_again() {
    let store = MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let _ = accounts.execute("c1", Open("Ann".into())).await.unwrap();
    // Another writer slips in between two commands; the next command must see it.
    let event = NewEvent::from_event(&Deposited { amount: 7 }).unwrap();
    store
        .append("account-c1", ExpectedVersion::Exact(1), vec![event])
        .await
        .unwrap();
    let done = accounts.execute("c1", Deposit(3)).await.unwrap();
    assert_eq!(done.stream_version, 3);
    assert_eq!(accounts.load("c1").await.unwrap().balance, 10);
}

/// A store that always reports a concurrent append, to exercise the retry bound.
#[derive(Clone)]
struct AlwaysConflicting(MemoryStore);

impl EventStore for AlwaysConflicting {
    type Session<'a> = Faulty<'a>;

    async fn session(&self) -> Result<Self::Session<'_>, StoreError> {
        Ok(Faulty {
            inner: self.0.session().await?,
            conflicts: true,
            broken_snapshots: false,
        })
    }
}

/// A memory store's session with faults: appends that always conflict, snapshot writes
/// that always fail.
struct Faulty<'a> {
    inner: annals::MemorySession<'a>,
    conflicts: bool,
    broken_snapshots: bool,
}

impl StoreSession for Faulty<'_> {
    async fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<annals::AppendResult, StoreError> {
        if self.conflicts {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual: 99,
            });
        }
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, range).await
    }

    async fn read_all(
        &mut self,
        after: annals::Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    async fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<annals::SnapshotRead, StoreError> {
        self.inner.read_from_snapshot(stream, fingerprint, to).await
    }

    async fn read_snapshot(
        &mut self,
        stream: &str,
    ) -> Result<Option<annals::SnapshotRecord>, StoreError> {
        self.inner.read_snapshot(stream).await
    }

    async fn write_snapshot(&mut self, snapshot: annals::SnapshotRecord) -> Result<(), StoreError> {
        if self.broken_snapshots {
            return Err(StoreError::backend(std::io::Error::other("disk full")));
        }
        self.inner.write_snapshot(snapshot).await
    }
}

#[tokio::test]
async fn retries_are_bounded() {
    let accounts =
        Repository::<Account, _>::new(AlwaysConflicting(MemoryStore::new())).with_max_attempts(3);
    match accounts.execute("x", Open("Ann".into())).await {
        Err(ExecuteError::Failed(RepositoryError::RetriesExhausted {
            stream,
            attempts,
            actual,
        })) => {
            assert_eq!((stream.as_str(), attempts, actual), ("account-x", 3, 99));
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
}

#[test]
fn given_when_then() {
    AggregateTest::<Account>::given_no_history()
        .when(Open("Ann".into()))
        .then_expect_events([Opened {
            owner: "Ann".into(),
        }]);
    let state = AggregateTest::<Account>::given([Opened {
        owner: "Ann".into(),
    }])
    .when(Deposit(5))
    .then_expect_events([Deposited { amount: 5 }]);
    assert_eq!(
        (state.owner.as_deref(), state.balance),
        (Some("Ann"), 5),
        "state after the command"
    );
    AggregateTest::<Account>::given_no_history()
        .when(Deposit(5))
        .then_expect_error(AccountError::NotOpen);
    AggregateTest::<Account>::given([Opened {
        owner: "Ann".into(),
    }])
    .when(Open("Bob".into()))
    .then_expect_error_matches(|e| matches!(e, AccountError::AlreadyOpen));
}

#[test]
#[should_panic(expected = "events differ")]
fn given_when_then_reports_different_events() {
    AggregateTest::<Account>::given([Opened {
        owner: "Ann".into(),
    }])
    .when(Deposit(5))
    .then_expect_events([Deposited { amount: 6 }]);
}

#[test]
#[should_panic(expected = "was rejected")]
fn given_when_then_reports_unexpected_rejection() {
    AggregateTest::<Account>::given_no_history()
        .when(Deposit(5))
        .then_expect_events([Deposited { amount: 5 }]);
}

/// A memory store whose snapshot writes always fail.
#[derive(Clone, Default)]
struct BrokenSnapshots(MemoryStore);

impl EventStore for BrokenSnapshots {
    type Session<'a> = Faulty<'a>;

    async fn session(&self) -> Result<Self::Session<'_>, StoreError> {
        Ok(Faulty {
            inner: self.0.session().await?,
            conflicts: false,
            broken_snapshots: true,
        })
    }
}

/// A snapshot that cannot be written never fails a command or a load (guarantee 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_snapshot_write_never_fails_a_command() {
    use annals_tests::domain::ledger::{Credit, v1::Ledger};
    let store = BrokenSnapshots::default();
    let ledgers = Repository::<Ledger, _>::new(store.clone());
    for n in 1..=12 {
        let done = ledgers.execute("b1", Credit(1)).await.expect("credit");
        assert_eq!(done.stream_version, n);
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let loaded = ledgers.load("b1").await.expect("load");
    assert_eq!((loaded.version(), loaded.total), (12, 12));
    assert!(store.0.read_snapshot("ledger-b1").await.unwrap().is_none());
}

/// Code written against the old names still compiles (with a deprecation warning).
#[test]
#[allow(deprecated)]
fn old_names_still_compile() {
    let error: annals::Error = RepositoryError::VersionNotFound {
        stream: "s".into(),
        requested: 2,
        current: 1,
    };
    assert!(error.to_string().contains("no version 2"));
    let pair = annals::schema::StoredEvent {
        count: 1,
        first_position: 7,
    };
    assert_eq!(
        pair,
        annals::schema::StoredPair {
            count: 1,
            first_position: 7
        }
    );
}
