//! Projections in production: statuses, stops, versions side by side and dead letters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use annals::Checkpoint;
use annals::projection::{
    DeadLetters, Documents, ProjectionError, ProjectionStore, Runner, RunnerOptions, State,
    status_of, wait_for_projection,
};

use super::helpers::{deposit, open, up_to};
use crate::views::{Balance, Careful, FIXED, Fragile};

/// A name no other check of this process uses: [`FIXED`] is shared by every backend's run.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Deploys the "fix" for an account: its deposits of 13 apply from now on.
fn fix(account: &str) {
    FIXED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(format!("account-{account}"));
}

/// The deposits applied to an account's [`Careful`] document.
async fn applied<S: ProjectionStore>(store: &S, account: &str) -> Option<Vec<u64>> {
    Documents::<Careful, _>::new(store.clone())
        .get(format!("account-{account}"))
        .await
        .expect("get")
        .map(|c| c.deposits)
}

/// Waits until `done` holds of the projection's status, or fails the check.
async fn until<S: ProjectionStore, P: annals::projection::Projection>(
    store: &S,
    what: &str,
    done: impl Fn(&annals::projection::Status) -> bool,
) -> annals::projection::Status {
    for _ in 0..2000 {
        let status = status_of::<P, _>(store).await.expect("status");
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{what}: never seen");
}

/// The status of every registered projection, from the store: live, building beside a
/// rebuild, failing (recorded by the runner, so any process sees it) and live again.
pub async fn every_projection_has_a_status<S: ProjectionStore>(store: S) {
    use annals::projection::{State, statuses};
    let all = statuses(&store).await.expect("statuses");
    let names: Vec<(&str, u32)> = all.iter().map(|s| (s.name.as_str(), s.version)).collect();
    for registered in [
        ("balances", 1),
        ("fragile", 1),
        ("joins", 1),
        ("last_seen", 1),
        ("owner", 1),
    ] {
        assert!(names.contains(&registered), "{registered:?} in {names:?}");
    }
    // Both versions of `balances` are registered: the second one opened is built unseen
    // while the first serves, whichever order the registry gives.
    assert!(
        all.iter()
            .all(|s| s.state == State::Live || (s.name == "balances" && s.state == State::Building)),
        "{all:?}"
    );

    let slot = store
        .begin_rebuild("balances", 1)
        .await
        .expect("a rebuild begins");
    assert_eq!(
        status_of::<Balance, _>(&store).await.expect("status").state,
        State::Building
    );
    assert!(
        store
            .promote(&slot, Checkpoint::START)
            .await
            .expect("promoted")
    );
    assert_eq!(
        status_of::<Balance, _>(&store).await.expect("status").state,
        State::Live
    );

    open(&store, "st", "ann").await;
    deposit(&store, "st", 13).await;
    let running = Runner::new(store.clone())
        .with::<Fragile>()
        .options(
            annals::projection::RunnerOptions::default()
                .retry_interval(Duration::from_millis(5))
                .max_retry_interval(Duration::from_millis(20)),
        )
        .start();
    let mut failing = None;
    for _ in 0..1000 {
        let status = status_of::<Fragile, _>(&store).await.expect("status");
        if status.state == State::Failed {
            failing = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let failing = failing.expect("the failure is recorded in the store");
    assert!(
        failing
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("thirteen is unlucky")),
        "{failing:?}"
    );
    running.shutdown().await.expect("a clean stop");
}

/// A projection declared `on_error = "stop"` halts on a failed batch, visibly (`Stopped`,
/// with the failure), while the runner's other projections go on.
pub async fn a_projection_that_stops_on_error_leaves_the_others_running<S: ProjectionStore>(
    store: S,
) {
    use crate::views::Halting;
    use annals::projection::State;
    open(&store, "h", "ann").await;
    deposit(&store, "h", 2).await;
    let poison = deposit(&store, "h", 13).await.expect("an event");
    let running = Runner::new(store.clone())
        .with::<Halting>()
        .with::<Balance>()
        .options(
            annals::projection::RunnerOptions::default().retry_interval(Duration::from_millis(5)),
        )
        .start();
    let mut stopped = None;
    for _ in 0..1000 {
        let status = status_of::<Halting, _>(&store).await.expect("status");
        if status.state == State::Stopped {
            stopped = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopped = stopped.expect("the projection stopped");
    assert!(
        stopped.checkpoint < poison,
        "nothing of the failed event applied"
    );
    assert!(
        stopped
            .failure
            .is_some_and(|f| f.contains("thirteen stops it"))
    );
    let last = deposit(&store, "h", 1).await.expect("an event");
    annals::projection::wait_for_projection::<Balance, _>(&store, last, Duration::from_secs(10))
        .await
        .expect("the other projection goes on");
    let halting = Documents::<Halting, _>::new(store.clone())
        .get("account-h")
        .await
        .expect("get");
    assert_eq!(halting.map(|h| h.balance), Some(2));
    running.shutdown().await.expect("a clean stop");
    assert_eq!(
        status_of::<Halting, _>(&store).await.expect("status").state,
        State::Stopped,
        "it stays stopped until a runner starts it again"
    );
}

/// A new version of a projection builds beside the old one, each with its own documents
/// and checkpoint; the new one is not read until it has caught up; the old one serves
/// until it is dropped, which removes it whole.
pub async fn versions_stand_side_by_side_until_the_old_is_dropped<S: ProjectionStore>(store: S) {
    use crate::views::BalanceV2;
    open(&store, "v", "ann").await;
    let last = deposit(&store, "v", 3).await.expect("an event");
    up_to(&Runner::new(store.clone()).with::<Balance>(), last).await;
    let v1 = Documents::<Balance, _>::new(store.clone());
    let v2 = Documents::<BalanceV2, _>::new(store.clone());
    assert!(
        matches!(
            v2.get("account-v").await,
            Err(ProjectionError::Building {
                version: 2,
                serving: 1,
                ..
            })
        ),
        "not built yet: not read as empty"
    );
    up_to(&Runner::new(store.clone()).with::<BalanceV2>(), last).await;
    assert_eq!(
        status_of::<Balance, _>(&store)
            .await
            .expect("status")
            .superseded_by,
        Some(2)
    );
    assert_eq!(
        v1.get("account-v").await.expect("get").map(|b| b.balance),
        Some(3)
    );
    assert_eq!(
        v2.get("account-v").await.expect("get").map(|b| b.cents),
        Some(300)
    );
    assert!(store.drop_projection("balances", 1).await.expect("dropped"));
    assert!(
        !store
            .drop_projection("balances", 1)
            .await
            .expect("nothing left")
    );
    assert_eq!(v1.get("account-v").await.expect("get"), None);
    assert_eq!(
        v2.get("account-v").await.expect("get").map(|b| b.cents),
        Some(300)
    );
}

/// A poison event goes to the dead letters after its tries and the projection goes on:
/// the other documents at once, while the later events of the poisoned document wait
/// behind it (parked, in order). After the fix, a retry applies them all in their order,
/// and the document follows the log again.
pub async fn a_dead_letter_holds_back_its_document_alone<S: ProjectionStore>(store: S) {
    let (k, other) = (unique("dk"), unique("do"));
    open(&store, &k, "ann").await;
    open(&store, &other, "bob").await;
    deposit(&store, &k, 1).await;
    let poison = deposit(&store, &k, 13).await.expect("an event");
    deposit(&store, &k, 2).await;
    deposit(&store, &other, 5).await;
    deposit(&store, &k, 3).await;
    let last = deposit(&store, &other, 6).await.expect("an event");
    let running = Runner::new(store.clone())
        .with::<Careful>()
        .options(
            RunnerOptions::default()
                .retry_interval(Duration::from_millis(5))
                .dead_letter_after(3),
        )
        .start();
    wait_for_projection::<Careful, _>(&store, last, Duration::from_secs(20))
        .await
        .expect("the projection goes on past the poison");
    assert_eq!(applied(&store, &other).await, Some(vec![5, 6]));
    assert_eq!(
        applied(&store, &k).await,
        Some(vec![1]),
        "nothing after the poison is applied"
    );
    let letters = DeadLetters::<Careful, _>::new(store.clone());
    let held = letters.list().await.expect("list");
    let at: Vec<(u64, u32, Option<u64>)> = held
        .iter()
        .map(|l| (l.stream_version, l.attempts, l.behind))
        .collect();
    assert_eq!(
        at,
        [
            (3, 3, None),
            (4, 0, Some(poison.position)),
            (5, 0, Some(poison.position))
        ],
        "the poison after three tries, then the later events of its document: {held:?}"
    );
    let first = &held[0];
    assert_eq!(first.checkpoint, poison);
    assert_eq!(first.stream, format!("account-{k}"));
    assert_eq!(
        (first.event.as_str(), first.event_version),
        ("Deposited", 1)
    );
    assert!(first.error.contains("thirteen"), "{first:?}");
    assert!(first.first_failed_at <= first.last_failed_at);
    let status = status_of::<Careful, _>(&store).await.expect("status");
    assert_eq!((status.state, status.dead_letters), (State::Live, 3));

    // Parked as it comes, while the poison waits.
    let parked = deposit(&store, &k, 4).await.expect("an event");
    wait_for_projection::<Careful, _>(&store, parked, Duration::from_secs(20))
        .await
        .expect("caught up");
    assert_eq!(letters.list().await.expect("list").len(), 4);
    assert!(
        matches!(
            letters.retry(format!("account-{k}")).await,
            Err(ProjectionError::Handler { .. })
        ),
        "before the fix the retry fails, and changes nothing"
    );
    assert_eq!(letters.list().await.expect("list").len(), 4);
    assert_eq!(applied(&store, &k).await, Some(vec![1]));

    fix(&k);
    assert_eq!(
        letters
            .retry(format!("account-{k}"))
            .await
            .expect("retried"),
        4
    );
    assert_eq!(applied(&store, &k).await, Some(vec![1, 13, 2, 3, 4]));
    assert!(letters.list().await.expect("list").is_empty());
    let next = deposit(&store, &k, 7).await.expect("an event");
    wait_for_projection::<Careful, _>(&store, next, Duration::from_secs(20))
        .await
        .expect("caught up");
    assert_eq!(applied(&store, &k).await, Some(vec![1, 13, 2, 3, 4, 7]));
    let actions = letters.actions().await.expect("actions");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(
        (
            actions[0].action.as_str(),
            actions[0].key.as_str(),
            actions[0].events
        ),
        ("retry", format!("account-{k}").as_str(), 4)
    );
    running.shutdown().await.expect("a clean stop");
}

/// Discarded dead letters are removed without being applied; the document goes on with
/// its later events, and the discard is recorded. A catch-up tries a poison event at once.
pub async fn discarded_dead_letters_let_their_document_go_on<S: ProjectionStore>(store: S) {
    let k = unique("dd");
    open(&store, &k, "ann").await;
    deposit(&store, &k, 1).await;
    deposit(&store, &k, 13).await;
    let last = deposit(&store, &k, 2).await.expect("an event");
    let runner = Runner::new(store.clone())
        .with::<Careful>()
        .options(RunnerOptions::default().dead_letter_after(2));
    up_to(&runner, last).await;
    let letters = DeadLetters::<Careful, _>::new(store.clone());
    let held = letters.list().await.expect("list");
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(held[0].attempts, 2, "tried twice at once: {held:?}");
    assert_eq!(letters.discard("nobody").await.expect("nothing"), 0);
    assert_eq!(
        letters
            .discard(format!("account-{k}"))
            .await
            .expect("discarded"),
        2
    );
    assert_eq!(
        letters.discard(format!("account-{k}")).await.expect("gone"),
        0
    );
    let next = deposit(&store, &k, 3).await.expect("an event");
    up_to(&runner, next).await;
    assert_eq!(applied(&store, &k).await, Some(vec![1, 3]));
    let actions = letters.actions().await.expect("actions");
    let seen: Vec<(&str, u64)> = actions
        .iter()
        .map(|a| (a.action.as_str(), a.events))
        .collect();
    assert_eq!(
        seen,
        [("discard", 2)],
        "a discard of nothing is not recorded"
    );
}

/// A projection whose dead letters would pass their bound pauses, visibly (failed, saying
/// why), without setting more aside; once some are settled it goes on. Here the bound is
/// two: one account's poison fits, the other's with the deposit behind it does not.
pub async fn a_projection_pauses_when_its_dead_letters_are_full<S: ProjectionStore>(store: S) {
    let (a, b) = (unique("fa"), unique("fb"));
    open(&store, &a, "ann").await;
    open(&store, &b, "bob").await;
    deposit(&store, &a, 13).await;
    let second = deposit(&store, &b, 13).await.expect("an event");
    let last = deposit(&store, &b, 1).await.expect("an event");
    let running = Runner::new(store.clone())
        .with::<Careful>()
        .options(
            RunnerOptions::default()
                .retry_interval(Duration::from_millis(5))
                .max_retry_interval(Duration::from_millis(20))
                .dead_letter_after(1)
                .max_dead_letters(2),
        )
        .start();
    let paused = until::<_, Careful>(&store, "the pause", |s| {
        s.failure
            .as_deref()
            .is_some_and(|f| f.contains("dead letters"))
    })
    .await;
    assert_eq!(paused.state, State::Failed);
    assert_eq!(paused.dead_letters, 1);
    assert!(paused.checkpoint < second, "nothing past the full store");
    let letters = DeadLetters::<Careful, _>::new(store.clone());
    fix(&a);
    assert_eq!(
        letters
            .retry(format!("account-{a}"))
            .await
            .expect("retried"),
        1
    );
    wait_for_projection::<Careful, _>(&store, last, Duration::from_secs(20))
        .await
        .expect("it goes on once there is room");
    let status = until::<_, Careful>(&store, "the failure cleared", |s| s.failure.is_none()).await;
    assert_eq!((status.state, status.dead_letters), (State::Live, 2));
    assert_eq!(applied(&store, &a).await, Some(vec![13]));
    assert_eq!(applied(&store, &b).await, None, "its first event waits");
    running.shutdown().await.expect("a clean stop");
}

/// A rebuild sets the poison aside like a runner, in the new generation; the old
/// generation's dead letters go with it when the rebuild takes over.
pub async fn a_rebuild_keeps_dead_letters_of_its_own<S: ProjectionStore>(store: S) {
    let k = unique("dr");
    open(&store, &k, "ann").await;
    deposit(&store, &k, 13).await;
    let last = deposit(&store, &k, 2).await.expect("an event");
    let runner = Runner::new(store.clone())
        .with::<Careful>()
        .options(RunnerOptions::default().dead_letter_after(1));
    up_to(&runner, last).await;
    let letters = DeadLetters::<Careful, _>::new(store.clone());
    assert_eq!(letters.list().await.expect("list").len(), 2);
    runner.rebuild::<Careful>(|_| {}).await.expect("rebuilt");
    let held = letters.list().await.expect("list");
    assert_eq!(held.len(), 2, "set aside again, once each: {held:?}");
    assert_eq!(applied(&store, &k).await, None, "its first deposit waits");
}

/// A new version is built unseen while the old one serves and commands keep arriving:
/// its readers are refused (`Building`) until it has caught up, then see it whole, all at
/// once; never a half-built model. The old version stays, superseded, for a rollback.
pub async fn a_new_version_takes_over_whole_while_commands_arrive<S: ProjectionStore>(store: S) {
    use crate::views::BalanceV2;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let accounts: Vec<String> = (0..20).map(|n| unique("t") + &format!("x{n}")).collect();
    for id in &accounts {
        open(&store, id, "ann").await;
        for amount in 1..=3 {
            deposit(&store, id, amount).await;
        }
    }
    let last = deposit(&store, &accounts[0], 1).await.expect("an event");
    up_to(&Runner::new(store.clone()).with::<Balance>(), last).await;
    let old = Runner::new(store.clone()).with::<Balance>().start();
    let v2 = status_of::<BalanceV2, _>(&store).await.expect("status");
    assert_eq!(
        (v2.state, v2.superseded_by),
        (State::Building, None),
        "built unseen"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, accounts, stop) = (store.clone(), accounts.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut last, mut n) = (None, 0);
            while !stop.load(Ordering::Relaxed) || n < 20 {
                last = deposit(&store, &accounts[n % accounts.len()], 1)
                    .await
                    .or(last);
                n += 1;
                tokio::task::yield_now().await;
            }
            last
        })
    };
    let reader = {
        let (store, accounts, stop) = (store.clone(), accounts.clone(), stop.clone());
        tokio::spawn(async move {
            let cents = Documents::<BalanceV2, _>::new(store);
            let (mut refused, mut whole) = (0, 0);
            let mut seen = vec![0u64; accounts.len()];
            loop {
                for (i, id) in accounts.iter().enumerate() {
                    match cents.get(format!("account-{id}")).await {
                        Err(ProjectionError::Building { serving: 1, .. }) => {
                            assert_eq!(whole, 0, "refused again after taking over");
                            refused += 1;
                        }
                        Ok(found) => {
                            let found = found.unwrap_or_else(|| {
                                panic!("account-{id} missing: a half-built model was read")
                            });
                            assert!(
                                found.cents >= 600 && found.cents >= seen[i],
                                "account-{id} at {} cents: a half-built model was read",
                                found.cents
                            );
                            seen[i] = found.cents;
                            whole += 1;
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
                if stop.load(Ordering::Relaxed) && whole > 0 {
                    break (refused, whole);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let new = Runner::new(store.clone())
        .with::<BalanceV2>()
        .options(RunnerOptions::default().batch_size(7))
        .start();
    let status = until::<_, BalanceV2>(&store, "the takeover", |s| s.state == State::Live).await;
    assert_eq!(status.superseded_by, None);
    stop.store(true, Ordering::Relaxed);
    let last = writer.await.expect("no panic").expect("deposits");
    let (refused, whole) = reader.await.expect("no panic: no half-built model read");
    assert!(
        whole > 0,
        "read after the takeover ({refused} refused before)"
    );
    new.wait_for(last, Duration::from_secs(20))
        .await
        .expect("the new version follows");
    old.wait_for(last, Duration::from_secs(20))
        .await
        .expect("the old version is still kept up to date");
    let old_status = status_of::<Balance, _>(&store).await.expect("status");
    assert_eq!(
        (old_status.state, old_status.superseded_by),
        (State::Live, Some(2))
    );
    let (v1, v2) = (
        Documents::<Balance, _>::new(store.clone()),
        Documents::<BalanceV2, _>::new(store.clone()),
    );
    for id in &accounts {
        let key = format!("account-{id}");
        let before = v1.get(key.as_str()).await.expect("get").expect("kept");
        let after = v2.get(key.as_str()).await.expect("get").expect("built");
        assert_eq!(after.cents, before.balance * 100, "{key}");
    }
    new.shutdown().await.expect("a clean stop");
    old.shutdown().await.expect("a clean stop");
}

/// A sharded projection reads as one: every document, whichever part applied it, exactly
/// once, through `get` and `list`; its status is that of its slowest part. On stores that
/// keep shards each part has its own checkpoint; the others run it whole.
pub async fn a_sharded_projection_reads_as_one<S: ProjectionStore>(store: S) {
    use crate::views::Sharded;
    let accounts: Vec<String> = (0..24).map(|n| unique("sh") + &format!("x{n}")).collect();
    let mut last = Checkpoint::START;
    for (n, id) in accounts.iter().enumerate() {
        open(&store, id, "ann").await;
        last = deposit(&store, id, n as u64 + 1).await.expect("an event");
    }
    let runner = Runner::new(store.clone())
        .with::<Sharded>()
        .options(RunnerOptions::default().batch_size(5));
    up_to(&runner, last).await;
    let documents = Documents::<Sharded, _>::new(store.clone());
    for (n, id) in accounts.iter().enumerate() {
        let found = documents
            .get(format!("account-{id}"))
            .await
            .expect("get")
            .expect("a document");
        assert_eq!((found.balance, found.applied), (n as u64 + 1, 2), "{id}");
    }
    let mut listed = 0;
    let mut after = None;
    loop {
        let page = documents.list(after.as_deref(), 7).await.expect("list");
        listed += page.items.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, accounts.len());
    let status = status_of::<Sharded, _>(&store).await.expect("status");
    assert!(status.checkpoint >= last, "{status:?}");
    assert_eq!(status.lag_events, 0);

    let done = runner.rebuild::<Sharded>(|_| {}).await.expect("rebuilt");
    assert_eq!(done.generation, 2);
    for (n, id) in accounts.iter().enumerate() {
        let found = documents.get(format!("account-{id}")).await.expect("get");
        assert_eq!(
            found.map(|f| (f.balance, f.applied)),
            Some((n as u64 + 1, 2))
        );
    }
}

/// A projection's own `tries` decides how often an event is tried before it goes to the
/// dead letters, over the runner's `dead_letter_after`.
pub async fn a_projection_counts_its_own_tries<S: ProjectionStore>(store: S) {
    use crate::views::Patient;
    let k = unique("pt");
    open(&store, &k, "ann").await;
    deposit(&store, &k, 13).await;
    let last = deposit(&store, &k, 2).await.expect("an event");
    let runner = Runner::new(store.clone())
        .with::<Patient>()
        .options(RunnerOptions::default().dead_letter_after(1));
    up_to(&runner, last).await;
    let held = DeadLetters::<Patient, _>::new(store.clone())
        .list()
        .await
        .expect("list");
    let tries: Vec<u32> = held.iter().map(|l| l.attempts).collect();
    assert_eq!(
        tries,
        [4, 0],
        "four tries, then the deposit behind it parked"
    );
}
