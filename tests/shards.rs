//! Sharded projections on PostgreSQL: runners share the parts, one lease each, take over
//! the parts of a runner that stops, and every event is applied once.

use std::collections::BTreeSet;
use std::time::Duration;

use annals::prelude::*;
use annals::projection::{Documents, Runner, RunnerHandle, RunnerOptions, Shard};
use annals::{Checkpoint, PostgresOptions, PostgresStore};
use annals_tests::domain::{Account, Deposit, Open};
use annals_tests::views::Sharded;

/// The parts of `sharded_balances` a runner holds now.
fn parts(runner: &RunnerHandle<PostgresStore>) -> BTreeSet<u32> {
    runner
        .held()
        .into_iter()
        .filter(|(name, _, _)| *name == "sharded_balances")
        .map(|(_, _, shard): (_, _, Shard)| shard.index)
        .collect()
}

/// Waits until `runner` holds `count` parts.
async fn holding(runner: &RunnerHandle<PostgresStore>, count: usize) -> BTreeSet<u32> {
    for _ in 0..2000 {
        let held = parts(runner);
        if held.len() == count {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the runner never held {count} parts: {:?}", parts(runner));
}

/// Deposits 1 into each account, `rounds` times; the last deposit's place.
async fn deposits(store: &PostgresStore, accounts: &[String], rounds: usize) -> Checkpoint {
    let repository = Repository::<Account, _>::new(store.clone());
    let mut last = Checkpoint::START;
    for _ in 0..rounds {
        for id in accounts {
            last = repository
                .execute(id, Deposit(1))
                .await
                .expect("deposit")
                .last_checkpoint
                .expect("an event");
        }
    }
    last
}

/// Every account's document applied each of its events once.
async fn exact(store: &PostgresStore, accounts: &[String]) {
    let documents = Documents::<Sharded, _>::new(store.clone());
    for id in accounts {
        let stream = format!("account-{id}");
        let events = store.stream_version(&stream).await.expect("version");
        let found = documents
            .get(stream.as_str())
            .await
            .expect("get")
            .expect("a document");
        assert_eq!(u64::from(found.applied), events, "{stream}");
        assert_eq!(found.balance, events - 1, "{stream}");
    }
}

/// A second store on `store`'s schema, on connections of its own as another process's
/// would be, and `count` accounts named `prefix` and a number, opened.
async fn two_stores(
    store: &PostgresStore,
    prefix: &str,
    count: usize,
) -> (PostgresStore, Vec<String>) {
    let other = PostgresStore::connect_with(
        PostgresOptions::new(annals_tests::database_url())
            .schema(store.schema().to_owned())
            .max_connections(8),
    )
    .await
    .expect("a second store on the schema");
    let accounts: Vec<String> = (0..count).map(|n| format!("{prefix}{n}")).collect();
    let repository = Repository::<Account, _>::new(store.clone());
    for id in &accounts {
        repository
            .execute(id, Open("ann".into()))
            .await
            .expect("open");
    }
    (other, accounts)
}

/// Small batches and a short takeover, so that parts change hands quickly.
fn quick() -> RunnerOptions {
    RunnerOptions::default()
        .batch_size(8)
        .retry_interval(Duration::from_millis(10))
        .takeover_interval(Duration::from_millis(200))
}

/// Two runners, each on connections of its own as two processes would be, share a
/// four-part projection: one takes its share of two, the other the rest. When the first
/// stops, the other takes its parts over; every event is applied exactly once throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_share_the_parts_of_a_sharded_projection() {
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    let (other, accounts) = two_stores(&store, "p", 16).await;
    deposits(&store, &accounts, 2).await;

    let options = quick();
    let first = Runner::new(store.clone())
        .with::<Sharded>()
        .options(options.max_shards(2))
        .start();
    let mine = holding(&first, 2).await;
    let second = Runner::new(other.clone())
        .with::<Sharded>()
        .options(options)
        .start();
    let theirs = holding(&second, 2).await;
    assert!(mine.is_disjoint(&theirs), "{mine:?} and {theirs:?}");

    let last = deposits(&store, &accounts, 3).await;
    first
        .wait_for(last, Duration::from_secs(30))
        .await
        .expect("every part caught up");
    exact(&store, &accounts).await;
    let (rows,): (i64,) = sqlx::query_as(&format!(
        "SELECT count(DISTINCT shard) FROM \"{}\".annals_projection_shards \
         WHERE name = 'sharded_balances' AND transaction_id > 0",
        store.schema()
    ))
    .fetch_one(store.pool())
    .await
    .expect("parts");
    assert_eq!(rows, 4, "each part moved its own checkpoint");

    first.shutdown().await.expect("a clean stop");
    let all = holding(&second, 4).await;
    assert_eq!(all.len(), 4);
    let last = deposits(&store, &accounts, 2).await;
    second
        .wait_for(last, Duration::from_secs(30))
        .await
        .expect("the parts taken over caught up");
    exact(&store, &accounts).await;
    second.shutdown().await.expect("a clean stop");
    drop(other);
}

/// Two runners, on connections of their own as two processes would be, share a sharded
/// rebuild: the second joins the first's, each builds the parts it holds (two each, their
/// share), and the new generation takes over once, whole, with every event applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_share_a_sharded_rebuild() {
    use annals::projection::{State, status_of};
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    // Enough for the first runner's two parts to take a while, so the second joins in time.
    let (other, accounts) = two_stores(&store, "r", 80).await;
    let last = deposits(&store, &accounts, 40).await;
    let options = RunnerOptions::default()
        .batch_size(8)
        .max_shards(2)
        .poll_interval(Duration::from_millis(10));
    let first = Runner::new(store.clone())
        .with::<Sharded>()
        .options(options);
    first
        .catch_up_to(last, Duration::from_secs(30))
        .await
        .expect("built once");

    let started = tokio::spawn(async move { first.rebuild::<Sharded>(|_| {}).await });
    for _ in 0..2000 {
        let status = status_of::<Sharded, _>(&store).await.expect("status");
        if status.state == State::Building {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = Runner::new(other.clone())
        .with::<Sharded>()
        .options(options);
    let joined = second.rebuild::<Sharded>(|_| {}).await.expect("joined");
    let started = started.await.expect("no panic").expect("rebuilt");
    assert_eq!(started.generation, 2);
    assert_eq!(
        joined.generation, 2,
        "the second joined the first's rebuild"
    );
    assert_eq!(
        (started.parts, joined.parts),
        (2, 2),
        "each built its share of the parts"
    );
    let status = status_of::<Sharded, _>(&store).await.expect("status");
    assert_eq!((status.generation, status.state), (2, State::Live));
    exact(&store, &accounts).await;
    drop(other);
}

/// Two runners with the default options even out a four-part projection by themselves: the
/// first takes all four, hands two back when the second comes, and takes them again when
/// the second stops; every event is applied exactly once throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_even_out_the_parts_by_themselves() {
    let fixture = annals_tests::postgres().await;
    let store = fixture.store.clone();
    let (other, accounts) = two_stores(&store, "e", 16).await;
    deposits(&store, &accounts, 2).await;

    let options = quick();
    let first = Runner::new(store.clone())
        .with::<Sharded>()
        .options(options)
        .start();
    holding(&first, 4).await;
    let second = Runner::new(other.clone())
        .with::<Sharded>()
        .options(options)
        .start();
    // Deposits go on while the parts change hands.
    deposits(&store, &accounts, 3).await;
    let theirs = holding(&second, 2).await;
    let mine = holding(&first, 2).await;
    assert!(mine.is_disjoint(&theirs), "{mine:?} and {theirs:?}");
    let last = deposits(&store, &accounts, 2).await;
    second
        .wait_for(last, Duration::from_secs(30))
        .await
        .expect("every part caught up");
    exact(&store, &accounts).await;

    second.shutdown().await.expect("a clean stop");
    holding(&first, 4).await;
    let last = deposits(&store, &accounts, 2).await;
    first
        .wait_for(last, Duration::from_secs(30))
        .await
        .expect("the parts taken back caught up");
    exact(&store, &accounts).await;
    first.shutdown().await.expect("a clean stop");
    drop(other);
}
