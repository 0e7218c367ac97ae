//! Projections: documents built from the log, exactly once, by a runner or on demand.

use std::time::Duration;

use annals::Checkpoint;
use annals::prelude::*;
use annals::projection::{
    Documents, ProjectionError, ProjectionStore, Runner, project_live, status_of,
};

use super::helpers::{deposit, open, up_to};
use crate::domain::{Account, Deposit};
use crate::views::{Balance, Fragile, LastSeen, Owner};

/// A runner's documents match the log; a second catch-up goes on from the checkpoint
/// without applying anything twice; documents read by key, by keys and in pages.
pub async fn documents_follow_the_log<S: ProjectionStore>(store: S) {
    let mut last = Checkpoint::START;
    for n in 0..5 {
        open(&store, &format!("{n}"), "ann").await;
        last = deposit(&store, &format!("{n}"), 10 + n)
            .await
            .expect("an event");
    }
    let runner = Runner::new(store.clone()).with::<Balance>();
    up_to(&runner, last).await;
    let last = deposit(&store, "0", 5).await.expect("an event");
    up_to(&runner, last).await;
    runner.catch_up().await.expect("nothing new");

    let balances = Documents::<Balance, _>::new(store.clone());
    let zero = balances.get("account-0").await.expect("get");
    assert_eq!(
        zero,
        Some(Balance {
            owner: "ann".to_owned(),
            balance: 15,
            applied: 3
        })
    );
    assert_eq!(balances.get("account-9").await.expect("get"), None);
    let some = balances
        .get_many(&[
            "account-4".to_owned(),
            "account-9".to_owned(),
            "account-1".to_owned(),
        ])
        .await
        .expect("get many");
    let found: Vec<_> = some.iter().map(|(k, d)| (k.as_str(), d.balance)).collect();
    assert_eq!(found, [("account-1", 11), ("account-4", 14)]);

    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = balances.list(after.as_deref(), 2).await.expect("list");
        assert!(page.items.len() <= 2);
        keys.extend(page.items.into_iter().map(|(k, _)| k));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        keys,
        [
            "account-0",
            "account-1",
            "account-2",
            "account-3",
            "account-4"
        ]
    );

    let status = status_of::<Balance, _>(&store).await.expect("status");
    assert_eq!((status.name.as_str(), status.version), ("balances", 1));
    assert_eq!((status.lag_events, status.checkpoint), (0, status.head));
    let moved = status.moved_at.expect("the checkpoint moved");
    let age = annals::chrono::Utc::now() - moved;
    assert!(age >= annals::chrono::TimeDelta::zero() - annals::chrono::TimeDelta::seconds(1));
    assert!(
        age < annals::chrono::TimeDelta::minutes(5),
        "moved {age} ago"
    );
}

/// A document keyed by a field of the event gathers the events of many streams.
pub async fn one_document_gathers_many_streams<S: ProjectionStore>(store: S) {
    open(&store, "a", "ann").await;
    open(&store, "b", "bob").await;
    let last = open(&store, "c", "ann").await;
    up_to(&Runner::new(store.clone()).with::<Owner>(), last).await;
    let owners = Documents::<Owner, _>::new(store.clone());
    assert_eq!(
        owners.get("ann").await.expect("get").map(|o| o.accounts),
        Some(2)
    );
    assert_eq!(
        owners.get("bob").await.expect("get").map(|o| o.accounts),
        Some(1)
    );
    assert_eq!(
        project_live::<Owner, _>(&store, "ann").await.expect("live"),
        Some(Owner { accounts: 2 })
    );
}

/// Handlers that take the metadata get each event's position, version and correlation.
pub async fn handlers_receive_the_metadata<S: ProjectionStore>(store: S) {
    open(&store, "m", "ann").await;
    let at = deposit(&store, "m", 3).await.expect("a position");
    let last = at.position;
    up_to(&Runner::new(store.clone()).with::<LastSeen>(), at).await;
    let seen = Documents::<LastSeen, _>::new(store.clone())
        .get("account-m")
        .await
        .expect("get")
        .expect("a document");
    let record = store.read_stream("account-m", 2..=2).await.expect("read");
    assert_eq!((seen.position, seen.stream_version), (last, 2));
    assert_eq!(
        seen.correlation,
        record[0].metadata.correlation_id.to_string()
    );
}

/// A started runner applies new events as they come; `wait_for` returns once they are
/// applied, and a wait for a position nothing reaches in time is a typed timeout.
pub async fn a_live_runner_follows_appends<S: ProjectionStore>(store: S) {
    open(&store, "live", "ann").await;
    let running = Runner::new(store.clone()).with::<Balance>().start();
    let balances = Documents::<Balance, _>::new(store.clone());
    for n in 1..=20 {
        let at = deposit(&store, "live", n).await;
        running
            .wait_for(at, Duration::from_secs(10))
            .await
            .expect("applied in time");
        let balance = balances.get("account-live").await.expect("get");
        assert_eq!(balance.map(|b| b.balance), Some(n * (n + 1) / 2));
    }
    let status = running.status().await.expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].lag_events, 0);
    assert_eq!(status[0].failure, None);
    running.shutdown().await.expect("a clean stop");

    // Nothing runs now: a new event is not applied, and a wait for it times out.
    let at = deposit(&store, "live", 100).await.expect("a position");
    let late = annals::projection::wait_for_projection::<Balance, _>(
        &store,
        at,
        Duration::from_millis(30),
    )
    .await;
    assert!(
        matches!(late, Err(ProjectionError::Timeout { checkpoint, .. }) if checkpoint == at),
        "{late:?}"
    );
}

/// A handler that fails stops its projection before the event: everything before it is
/// committed, nothing of it or after it, and the next run stops there again.
pub async fn a_failing_handler_stops_before_its_event<S: ProjectionStore>(store: S) {
    open(&store, "f", "ann").await;
    open(&store, "g", "bob").await;
    deposit(&store, "f", 1).await;
    deposit(&store, "g", 2).await;
    let poison = deposit(&store, "f", 13).await.expect("a position").position;
    let last = deposit(&store, "g", 4).await.expect("a position");
    let runner = Runner::new(store.clone()).with::<Fragile>();
    for _ in 0..2 {
        match runner.catch_up_to(last, Duration::from_secs(10)).await {
            Err(ProjectionError::Handler {
                projection,
                stream,
                stream_version,
                position,
                event,
                source,
            }) => {
                assert_eq!(projection, "fragile");
                assert_eq!((stream.as_str(), stream_version), ("account-f", 3));
                assert_eq!((position, event.as_str()), (poison, "Deposited"));
                assert_eq!(source.message, "thirteen is unlucky");
            }
            other => panic!("expected the handler's error, got {other:?}"),
        }
    }
    let fragile = Documents::<Fragile, _>::new(store.clone());
    assert_eq!(
        fragile
            .get("account-f")
            .await
            .expect("get")
            .map(|f| f.balance),
        Some(1)
    );
    assert_eq!(
        fragile
            .get("account-g")
            .await
            .expect("get")
            .map(|f| f.balance),
        Some(2)
    );
    let status = status_of::<Fragile, _>(&store).await.expect("status");
    assert_eq!(
        status.lag_events, 2,
        "the poison event and the one after it"
    );
}

/// A handler that panics is reported like one that fails, with the panic's message.
pub async fn a_panicking_handler_is_reported<S: ProjectionStore>(store: S) {
    open(&store, "p", "ann").await;
    deposit(&store, "p", 5).await;
    let last = deposit(&store, "p", 666).await.expect("a position");
    match Runner::new(store.clone())
        .with::<Fragile>()
        .catch_up_to(last, Duration::from_secs(10))
        .await
    {
        Err(ProjectionError::Handler { source, stream, .. }) => {
            assert_eq!(stream, "account-p");
            assert!(source.message.contains("the beast"), "{}", source.message);
        }
        other => panic!("expected the panic as an error, got {other:?}"),
    }
    let fragile = Documents::<Fragile, _>::new(store.clone());
    assert_eq!(
        fragile
            .get("account-p")
            .await
            .expect("get")
            .map(|f| f.balance),
        Some(5)
    );
}

/// A handler can delete its document; a later event for its key starts a new one.
pub async fn a_handler_deletes_its_document<S: ProjectionStore>(store: S) {
    open(&store, "d", "ann").await;
    let last = deposit(&store, "d", 7).await.expect("an event");
    let runner = Runner::new(store.clone()).with::<Fragile>();
    up_to(&runner, last).await;
    let fragile = Documents::<Fragile, _>::new(store.clone());
    assert_eq!(
        fragile
            .get("account-d")
            .await
            .expect("get")
            .map(|f| f.balance),
        Some(7)
    );
    let last = deposit(&store, "d", 0).await.expect("an event");
    up_to(&runner, last).await;
    assert_eq!(fragile.get("account-d").await.expect("get"), None);
    // Deleted and created again within one batch.
    deposit(&store, "d", 0).await;
    let last = deposit(&store, "d", 3).await.expect("an event");
    up_to(&runner, last).await;
    assert_eq!(
        fragile
            .get("account-d")
            .await
            .expect("get")
            .map(|f| f.balance),
        Some(3)
    );
    assert_eq!(
        project_live::<Fragile, _>(&store, "account-d")
            .await
            .expect("live"),
        Some(Fragile { balance: 3 })
    );
}

/// A stored event a projection consumes that does not decode stops it, with the event's
/// location; it is never skipped.
pub async fn an_undecodable_event_stops_the_projection<S: ProjectionStore>(store: S) {
    open(&store, "u", "ann").await;
    let bad = NewEvent::new(
        "Deposited",
        1,
        serde_json::value::to_raw_value(&serde_json::json!({ "amount": "many" })).expect("json"),
    )
    .expect("a valid name");
    let done = store
        .append("account-u", ExpectedVersion::Exact(1), vec![bad])
        .await
        .expect("append");
    match Runner::new(store.clone())
        .with::<Balance>()
        .catch_up_to(done.last_checkpoint(), Duration::from_secs(10))
        .await
    {
        Err(ProjectionError::Decode { projection, source }) => {
            assert_eq!(projection, "balances");
            assert_eq!(
                (source.stream.as_str(), source.stream_version),
                ("account-u", 2)
            );
            assert_eq!(source.position, done.last_position);
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let balance = Documents::<Balance, _>::new(store.clone())
        .get("account-u")
        .await
        .expect("get");
    assert_eq!(
        balance.map(|b| b.applied),
        Some(1),
        "the event before it is applied"
    );
}

/// The checkpoint is a compare-and-set: a batch committed from a checkpoint that moved
/// writes nothing, and two runners racing on one projection never apply an event twice.
pub async fn racing_runners_apply_each_event_once<S: ProjectionStore>(store: S) {
    let mut last = Checkpoint::START;
    for n in 0..20 {
        open(&store, &format!("r{n}"), "ann").await;
        last = deposit(&store, &format!("r{n}"), n)
            .await
            .expect("an event");
    }
    let (slot, from) = store.open_projection("balances", 1).await.expect("open");
    assert_eq!(from, Checkpoint::START);
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let options = annals::projection::RunnerOptions::default().batch_size(3);
                Runner::new(store)
                    .with::<Balance>()
                    .options(options)
                    .catch_up()
                    .await
            })
        })
        .collect();
    for runner in runners {
        match runner.await.expect("no panic") {
            Ok(()) | Err(ProjectionError::Fenced { .. }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    up_to(&Runner::new(store.clone()).with::<Balance>(), last).await;
    let balances = Documents::<Balance, _>::new(store.clone());
    for n in 0..20u64 {
        let balance = balances
            .get(format!("account-r{n}"))
            .await
            .expect("get")
            .expect("a document");
        assert_eq!((balance.balance, balance.applied), (n, 2), "account-r{n}");
    }
    // A stale commit is refused and changes nothing.
    let stale = store
        .commit_documents(&slot, from, from, vec![("account-r1".to_owned(), None)])
        .await
        .expect("answered");
    assert!(!stale);
    assert!(balances.get("account-r1").await.expect("get").is_some());
}

/// An inline projection is applied inside each append: its documents are right as soon as
/// the append returns, with no runner; a runner leaves it alone and waits return at once.
pub async fn inline_documents_are_never_behind<S: ProjectionStore>(store: S) {
    // A handle made before: it does not apply the projection, but its runners learn from
    // the database that the projection is inline, as another process's would.
    let plain = store.clone();
    let store = store.inline::<Balance>().await.expect("inline");
    assert_eq!(store.inline_projections(), [("balances", 1)]);
    let balances = Documents::<Balance, _>::new(store.clone());
    open(&store, "i", "ann").await;
    for n in 1..=5u64 {
        let at = deposit(&store, "i", n).await;
        let balance = balances
            .get("account-i")
            .await
            .expect("get")
            .expect("a document");
        assert_eq!(
            (balance.balance, balance.applied),
            (n * (n + 1) / 2, n as u32 + 1)
        );
        annals::projection::wait_for_projection::<Balance, _>(
            &store,
            at.expect("a checkpoint"),
            Duration::from_millis(1),
        )
        .await
        .expect("at once");
    }
    // Concurrent appends (grouped where the store groups them) each apply once.
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                open(&store, &format!("c{n}"), "bob").await;
                deposit(&store, &format!("c{n}"), 100).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no panic");
    }
    for n in 0..8 {
        let balance = balances
            .get(format!("account-c{n}"))
            .await
            .expect("get")
            .expect("a document");
        assert_eq!((balance.balance, balance.applied), (100, 2));
    }
    // Runners leave it alone, on this handle or another: nothing is applied twice.
    for handle in [store.clone(), plain.clone()] {
        Runner::new(handle)
            .with::<Balance>()
            .catch_up()
            .await
            .expect("nothing to do");
    }
    let running = Runner::new(plain.clone()).with::<Balance>().start();
    running.shutdown().await.expect("a clean stop");
    // A rebuild beside it would miss the appends made meanwhile: refused.
    match Runner::new(plain.clone()).rebuild::<Balance>(|_| {}).await {
        Err(ProjectionError::Inline { projection }) => assert_eq!(projection, "balances"),
        other => panic!("expected the rebuild refused, got {other:?}"),
    }
    let balance = balances
        .get("account-i")
        .await
        .expect("get")
        .expect("a document");
    assert_eq!(balance.applied, 6);
    let status = status_of::<Balance, _>(&store).await.expect("status");
    assert!(status.inline);
    assert_eq!((status.lag_events, status.checkpoint), (0, status.head));
}

/// An inline handler that fails refuses the append with a typed error: neither the events
/// nor any document are written, and appends beside it go through.
pub async fn a_failing_inline_handler_writes_nothing<S: ProjectionStore>(store: S) {
    let store = store.inline::<Fragile>().await.expect("inline");
    let fragile = Documents::<Fragile, _>::new(store.clone());
    open(&store, "x", "ann").await;
    deposit(&store, "x", 5).await;
    let refused = Repository::<Account, _>::new(store.clone())
        .execute("x", Deposit(13))
        .await;
    match refused {
        Err(ExecuteError::Failed(annals::RepositoryError::Store(annals::StoreError::Inline {
            stream,
            source,
        }))) => {
            assert_eq!(stream, "account-x");
            match *source {
                ProjectionError::Handler {
                    projection,
                    stream_version,
                    source,
                    ..
                } => {
                    assert_eq!((projection.as_str(), stream_version), ("fragile", 3));
                    assert_eq!(source.message, "thirteen is unlucky");
                }
                other => panic!("expected the handler's error, got {other}"),
            }
        }
        other => panic!("expected the inline refusal, got {other:?}"),
    }
    assert_eq!(store.stream_version("account-x").await.expect("version"), 2);
    assert_eq!(
        fragile
            .get("account-x")
            .await
            .expect("get")
            .map(|f| f.balance),
        Some(5)
    );

    // Eight appends at once, one refused: the seven others land, with their documents.
    let tasks: Vec<_> = (0..8u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                open(&store, &format!("g{n}"), "bob").await;
                Repository::<Account, _>::new(store)
                    .execute(&format!("g{n}"), Deposit(if n == 3 { 13 } else { n + 1 }))
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut landed = 0;
    for task in tasks {
        landed += usize::from(task.await.expect("no panic"));
    }
    assert_eq!(landed, 7);
    for n in 0..8u64 {
        let version = store
            .stream_version(&format!("account-g{n}"))
            .await
            .expect("version");
        let balance = fragile
            .get(format!("account-g{n}"))
            .await
            .expect("get")
            .map(|f| f.balance);
        if n == 3 {
            assert_eq!((version, balance), (1, None));
        } else {
            assert_eq!((version, balance), (2, Some(n + 1)));
        }
    }
}

/// A rebuild builds a new generation beside the live one while commands keep coming and
/// a runner keeps following: readers never see a document missing or going back, and
/// after the rebuild takes over, the documents are exact.
pub async fn a_rebuild_never_shows_a_half_built_model<S: ProjectionStore>(store: S) {
    let accounts: Vec<String> = (0..20).map(|n| format!("b{n}")).collect();
    let mut last = Checkpoint::START;
    for id in &accounts {
        open(&store, id, "ann").await;
        for amount in 1..=3 {
            last = deposit(&store, id, amount).await.expect("an event");
        }
    }
    let runner = Runner::new(store.clone())
        .with::<Balance>()
        .options(annals::projection::RunnerOptions::default().batch_size(7));
    up_to(&runner, last).await;
    let running = Runner::new(store.clone()).with::<Balance>().start();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, accounts, stop) = (store.clone(), accounts.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = None;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 20 {
                last = deposit(&store, &accounts[n % accounts.len()], 1)
                    .await
                    .or(last);
                n += 1;
            }
            last
        })
    };
    let reader = {
        let (store, accounts, stop) = (store.clone(), accounts.clone(), stop.clone());
        tokio::spawn(async move {
            let balances = Documents::<Balance, _>::new(store);
            let mut seen = vec![0u32; accounts.len()];
            let mut reads = 0;
            loop {
                for (i, id) in accounts.iter().enumerate() {
                    let balance = balances
                        .get(format!("account-{id}"))
                        .await
                        .expect("get")
                        .unwrap_or_else(|| panic!("account-{id} vanished during the rebuild"));
                    assert!(balance.applied >= seen[i], "account-{id} went back");
                    seen[i] = balance.applied;
                    reads += 1;
                }
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break reads;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut reports = 0;
    let done = runner
        .rebuild::<Balance>(|progress| {
            assert!(progress.done <= progress.total);
            reports += 1;
        })
        .await
        .expect("rebuilt");
    assert_eq!(done.generation, 2);
    assert!(reports >= 2, "a report per batch");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let last = writer.await.expect("no panic").expect("deposits");
    assert!(reader.await.expect("no panic: no half-built model seen") > 0);
    running
        .wait_for(last, Duration::from_secs(10))
        .await
        .expect("the live runner follows the new generation");
    running.shutdown().await.expect("a clean stop");

    let status = status_of::<Balance, _>(&store).await.expect("status");
    assert_eq!(status.generation, 2);
    let balances = Documents::<Balance, _>::new(store.clone());
    for id in &accounts {
        let key = format!("account-{id}");
        let live = project_live::<Balance, _>(&store, key.as_str())
            .await
            .expect("live");
        assert_eq!(
            balances.get(key.as_str()).await.expect("get"),
            live,
            "{key}"
        );
    }
}

/// A runner stopped while events keep coming, and started again, applies every event
/// exactly once: no event applied twice, none skipped.
pub async fn a_runner_stopped_and_started_applies_each_event_once<S: ProjectionStore>(store: S) {
    let accounts: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
    for id in &accounts {
        open(&store, id, "ann").await;
    }
    let writer = {
        let (store, accounts) = (store.clone(), accounts.clone());
        tokio::spawn(async move {
            let mut last = None;
            for n in 0..200 {
                last = deposit(&store, &accounts[n % accounts.len()], 1).await;
                if n % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            last
        })
    };
    let options = annals::projection::RunnerOptions::default().batch_size(5);
    for _ in 0..5 {
        let running = Runner::new(store.clone())
            .with::<Balance>()
            .options(options)
            .start();
        tokio::time::sleep(Duration::from_millis(3)).await;
        running.shutdown().await.expect("a clean stop");
    }
    let last = writer.await.expect("no panic").expect("deposits");
    up_to(&Runner::new(store.clone()).with::<Balance>(), last).await;
    let balances = Documents::<Balance, _>::new(store.clone());
    let mut total = 0;
    for id in &accounts {
        let balance = balances
            .get(format!("account-{id}"))
            .await
            .expect("get")
            .expect("a document");
        assert_eq!(
            u64::from(balance.applied),
            balance.balance + 1,
            "account-{id}"
        );
        total += balance.balance;
    }
    assert_eq!(total, 200);
}

/// A projection reads only the events it consumes, and its checkpoint still moves past
/// the others: no false lag, and no read of them again after a restart.
pub async fn a_checkpoint_moves_past_events_not_consumed<S: ProjectionStore>(store: S) {
    open(&store, "n1", "ann").await;
    let mut last = Checkpoint::START;
    for amount in 1..=30 {
        last = deposit(&store, "n1", amount).await.expect("an event");
    }
    // Owners consume `Opened` only: thirty deposits after the one they need.
    let runner = Runner::new(store.clone())
        .with::<Owner>()
        .options(annals::projection::RunnerOptions::default().batch_size(4));
    up_to(&runner, last).await;
    let status = status_of::<Owner, _>(&store).await.expect("status");
    assert_eq!(status.checkpoint, last);
    assert_eq!(status.lag_events, 0);
    let owners = Documents::<Owner, _>::new(store.clone());
    assert_eq!(
        owners.get("ann").await.expect("get").map(|o| o.accounts),
        Some(1)
    );
    // More of both; a new runner goes on from the checkpoint, each event once.
    open(&store, "n2", "ann").await;
    let last = deposit(&store, "n2", 1).await.expect("an event");
    up_to(&Runner::new(store.clone()).with::<Owner>(), last).await;
    assert_eq!(
        owners.get("ann").await.expect("get").map(|o| o.accounts),
        Some(2)
    );
    assert_eq!(
        status_of::<Owner, _>(&store)
            .await
            .expect("status")
            .checkpoint,
        last
    );
}

/// Inline appends from many tasks that change one document (one owner's, from many
/// streams) all count: none overwrites another's change.
pub async fn concurrent_inline_appends_to_one_document_lose_nothing<S: ProjectionStore>(store: S) {
    let store = store.inline::<Owner>().await.expect("inline");
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                open(&store, &format!("o{n}"), "shared").await;
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no panic");
    }
    let owners = Documents::<Owner, _>::new(store.clone());
    assert_eq!(
        owners.get("shared").await.expect("get").map(|o| o.accounts),
        Some(16)
    );
}

/// An old event whose upcaster reads its stored record reaches a projection's handler
/// upcast with that record, though no handler asks for the metadata.
pub async fn old_events_upcast_with_their_record_for_projections<S: ProjectionStore>(store: S) {
    use crate::views::Joins;
    let metadata = annals::Metadata {
        actor: Some("bob".to_owned()),
        ..annals::Metadata::root(uuid::Uuid::now_v7())
    };
    let v1 = NewEvent::new(
        "Joined",
        1,
        serde_json::value::to_raw_value(&serde_json::json!({ "name": "ann" })).expect("json"),
    )
    .expect("a valid event name")
    .with_metadata(metadata);
    let done = store
        .append("member-j1", ExpectedVersion::NoStream, vec![v1])
        .await
        .expect("append");
    let recorded_at = store.read_stream("member-j1", ..).await.expect("read")[0].recorded_at;
    up_to(
        &Runner::new(store.clone()).with::<Joins>(),
        done.last_checkpoint(),
    )
    .await;
    let joins = Documents::<Joins, _>::new(store.clone())
        .get("member-j1")
        .await
        .expect("get")
        .expect("a document");
    assert_eq!(
        joins.joined,
        [("ann".to_owned(), recorded_at, Some("bob".to_owned()))]
    );
    assert_eq!(
        project_live::<Joins, _>(&store, "member-j1")
            .await
            .expect("live"),
        Some(joins)
    );
}

/// Projections kept in memory over the store's log: built by a runner, read by key, gone
/// with the wrapper, and never written to the store.
pub async fn documents_kept_in_memory_over_the_log<S: ProjectionStore>(store: S) {
    use annals::projection::InMemory;
    open(&store, "mem", "ann").await;
    let last = deposit(&store, "mem", 4).await.expect("an event");
    let memory = InMemory::new(store.clone());
    up_to(&Runner::new(memory.clone()).with::<Balance>(), last).await;
    let balances = Documents::<Balance, _>::new(memory.clone());
    let balance = balances
        .get("account-mem")
        .await
        .expect("get")
        .expect("a document");
    assert_eq!((balance.balance, balance.applied), (4, 2));
    assert_eq!(
        status_of::<Balance, _>(&memory)
            .await
            .expect("status")
            .checkpoint,
        last
    );
    // The store's own read models are untouched, and a new wrapper starts empty.
    assert_eq!(
        Documents::<Balance, _>::new(store.clone())
            .get("account-mem")
            .await
            .expect("get"),
        None
    );
    let fresh = InMemory::new(store.clone());
    assert_eq!(
        Documents::<Balance, _>::new(fresh)
            .get("account-mem")
            .await
            .expect("get"),
        None
    );
    // Appends through the wrapper reach the log, and a live runner follows them.
    let running = Runner::new(memory.clone()).with::<Balance>().start();
    let last = deposit(&memory, "mem", 6).await.expect("an event");
    running
        .wait_for(last, Duration::from_secs(10))
        .await
        .expect("applied");
    running.shutdown().await.expect("a clean stop");
    let balance = balances
        .get("account-mem")
        .await
        .expect("get")
        .expect("a document");
    assert_eq!(balance.balance, 10);
    assert!(memory.clone().inline::<Balance>().await.is_err());
}
