//! Commands through a `Repository`: metadata, the past, contention, caches and creating bets.

use annals::prelude::*;
use annals::{ExecuteError, RepositoryError};

use crate::domain::{Account, Deposit, Open};

use super::helpers::hammer_one_stream;

/// Correlation, causation, actor and headers flow from the command context to every event.
pub async fn command_metadata_flows_to_events<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let ctx = CommandContext::new()
        .with_actor("teller-7")
        .with_header("ip", "10.0.0.1");
    let _ = accounts
        .execute_with("m1", Open("Ann".into()), &ctx)
        .await
        .expect("open");
    let opened = accounts
        .history("m1")
        .await
        .expect("history")
        .remove(0)
        .record;
    assert_eq!(opened.metadata.correlation_id, ctx.correlation_id());
    assert_eq!(opened.metadata.causation_id, ctx.causation_id());
    assert_eq!(opened.metadata.actor.as_deref(), Some("teller-7"));
    assert_eq!(
        opened.metadata.headers.get("ip").map(String::as_str),
        Some("10.0.0.1")
    );
    assert_eq!(
        opened.event_id.get_version_num(),
        7,
        "event ids are UUID v7"
    );

    // A follow-up command caused by that event joins its conversation.
    let follow = CommandContext::caused_by(&opened);
    let _ = accounts
        .execute_with("m1", Deposit(5), &follow)
        .await
        .expect("deposit");
    let deposited = accounts
        .history("m1")
        .await
        .expect("history")
        .remove(1)
        .record;
    assert_eq!(deposited.metadata.correlation_id, ctx.correlation_id());
    assert_eq!(deposited.metadata.causation_id, opened.event_id);
}

/// `load_at_version`, `load_as_of` and `history` see the past exactly.
pub async fn temporal_queries_and_history<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let _ = accounts
        .execute("t1", Open("Ann".into()))
        .await
        .expect("open");
    for amount in [10, 20, 30] {
        let _ = accounts
            .execute("t1", Deposit(amount))
            .await
            .expect("deposit");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        accounts.load_at_version("t1", 0).await.expect("v0").balance,
        0
    );
    let v3 = accounts.load_at_version("t1", 3).await.expect("v3");
    assert_eq!((v3.version(), v3.balance), (3, 30));
    match accounts.load_at_version("t1", 9).await {
        Err(RepositoryError::VersionNotFound {
            requested: 9,
            current: 4,
            ..
        }) => {}
        other => panic!("expected VersionNotFound, got {other:?}"),
    }

    let history = accounts.history("t1").await.expect("history");
    assert_eq!(history.len(), 4);
    let second = &history[2].record;
    let as_of = accounts
        .load_as_of("t1", second.recorded_at)
        .await
        .expect("as of");
    assert_eq!((as_of.version(), as_of.balance), (3, 30));
    let before = accounts
        .load_as_of(
            "t1",
            history[0].record.recorded_at - chrono::Duration::seconds(1),
        )
        .await
        .expect("before");
    assert_eq!(before.version(), 0);
    assert_eq!(accounts.load("t1").await.expect("now").balance, 60);
}

/// 16 tasks each run 50 deposits on one account: every deposit lands once, versions contiguous.
pub async fn concurrent_commands_on_one_stream<S: EventStore>(store: S) {
    hammer_one_stream(store, 16, 50, 0).await;
}

/// The same contention through a repository with an aggregate cache: an entry is held by
/// one command at a time, and every stale decision is caught by the expected version.
pub async fn concurrent_cached_commands_on_one_stream<S: EventStore>(store: S) {
    hammer_one_stream(store, 16, 50, 100).await;
}

/// A `#[command(create)]` on an aggregate that is not cached bets that its stream is new.
/// Whatever the bet gives, the outcome is the one the real state decides, and a lost bet
/// is not an attempt: it never exhausts the retries.
pub async fn creating_commands_bet_on_a_new_stream<S: EventStore>(store: S) {
    use crate::domain::{AccountError, Issue, Stamp, Ticket, TicketError};

    let accounts = Repository::<Account, _>::new(store.clone()).with_max_attempts(1);
    let done = accounts
        .execute("b1", Open("Ann".into()))
        .await
        .expect("open");
    assert_eq!((done.stream_version, done.attempts), (1, 1), "a won bet");
    // The bet appends, conflicts and writes nothing; the loaded state rejects.
    match accounts.execute("b1", Open("Bob".into())).await {
        Err(ExecuteError::Rejected(AccountError::AlreadyOpen)) => {}
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    let account = accounts.load("b1").await.expect("load");
    assert_eq!(
        (account.version(), account.owner.as_deref()),
        (1, Some("Ann")),
        "a lost bet writes nothing"
    );

    let tickets = Repository::<Ticket, _>::new(store.clone()).with_max_attempts(1);
    tickets
        .execute("t1", Issue("printer".into()))
        .await
        .expect("issue");
    // Lost bet, and the real state decides nothing.
    let again = tickets
        .execute("t1", Issue("printer".into()))
        .await
        .expect("issue again");
    assert_eq!(
        (again.events.len(), again.stream_version, again.attempts),
        (0, 1, 1),
        "a repeated issue"
    );
    match tickets.execute("t1", Issue("scanner".into())).await {
        Err(ExecuteError::Rejected(TicketError::AlreadyIssued(title))) => {
            assert_eq!(title, "printer");
        }
        other => panic!("expected AlreadyIssued, got {other:?}"),
    }
    // Rejected on the default state: no bet; the real state accepts.
    let stamped = tickets.execute("t1", Stamp).await.expect("stamp");
    assert_eq!((stamped.stream_version, stamped.attempts), (2, 1));
    match tickets.execute("t2", Stamp).await {
        Err(ExecuteError::Rejected(TicketError::NotIssued)) => {}
        other => panic!("expected NotIssued, got {other:?}"),
    }
    assert_eq!(store.stream_version("ticket-t2").await.expect("version"), 0);

    // A cached aggregate decides on its cached state, with no bet.
    let cached = Repository::<Account, _>::new(store.clone()).with_cache(4);
    cached
        .execute("b2", Open("Ann".into()))
        .await
        .expect("open");
    match cached.execute("b2", Open("Bob".into())).await {
        Err(ExecuteError::Rejected(AccountError::AlreadyOpen)) => {}
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    let ticket = tickets.load("t1").await.expect("load");
    assert_eq!(
        (ticket.title.as_deref(), ticket.stamps),
        (Some("printer"), 1)
    );
}

/// A cached aggregate decides without reading, reads only the events another writer added
/// when its append conflicts, and survives rejections and empty decisions.
pub async fn cached_aggregates_catch_up_with_other_writers<S: EventStore>(store: S) {
    let cached = Repository::<Account, _>::new(store.clone()).with_cache(10);
    let plain = Repository::<Account, _>::new(store.clone());
    cached
        .execute("c1", Open("Ann".into()))
        .await
        .expect("open");
    for amount in 1..=3 {
        let done = cached
            .execute("c1", Deposit(amount))
            .await
            .expect("deposit");
        assert_eq!(done.attempts, 1, "a warm cache decides at once");
    }
    // Another writer appends twice behind the cache's back.
    plain.execute("c1", Deposit(10)).await.expect("deposit");
    plain.execute("c1", Deposit(20)).await.expect("deposit");
    let done = cached.execute("c1", Deposit(100)).await.expect("deposit");
    assert_eq!((done.stream_version, done.attempts), (7, 2));
    // A rejection leaves the cached state as it was.
    match cached.execute("c1", Open("Bob".into())).await {
        Err(ExecuteError::Rejected(e)) => assert_eq!(e, crate::domain::AccountError::AlreadyOpen),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let done = cached.execute("c1", Deposit(1000)).await.expect("deposit");
    assert_eq!((done.stream_version, done.attempts), (8, 1));
    let account = plain.load("c1").await.expect("load");
    assert_eq!((account.balance, account.deposits), (1136, 7));
    // Entries beyond the capacity are dropped, never wrong: 30 accounts through a cache
    // of 10, then each account once more.
    for n in 0..30 {
        cached
            .execute(&format!("many-{n}"), Open("Ann".into()))
            .await
            .expect("open");
    }
    for n in 0..30 {
        let id = format!("many-{n}");
        let done = cached.execute(&id, Deposit(n)).await.expect("deposit");
        assert_eq!(done.stream_version, 2, "{id}");
    }
    for n in 0..30 {
        assert_eq!(
            plain
                .load(&format!("many-{n}"))
                .await
                .expect("load")
                .balance,
            n
        );
    }
}
