//! Every public future of annals can be handed to `tokio::spawn` when its inputs are owned:
//! a service spawns opens, commands and reads on its runtime's threads.

use annals::prelude::*;
use annals::{Checkpoint, MemoryStore, PostgresOptions, PostgresStore, SqliteStore, VersionRange};
use annals_tests::domain::{Account, Deposit, Open};

fn spawned<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

/// The operations of `store`, each spawned on its own.
async fn spawn_each<S: annals::projection::ProjectionStore>(store: S) {
    let repo = Repository::<Account, _>::new(store.clone()).with_cache(10);
    let r = repo.clone();
    spawned(async move { r.execute("s1", Open("Ann".into())).await })
        .await
        .expect("join")
        .expect("open");
    let r = repo.clone();
    let ctx = CommandContext::new().with_actor("test");
    spawned(async move { r.execute_with("s1", Deposit(2), &ctx).await })
        .await
        .expect("join")
        .expect("deposit");
    let r = repo.clone();
    spawned(async move { r.load("s1").await })
        .await
        .expect("join")
        .expect("load");
    let r = repo.clone();
    spawned(async move { r.load_at_version("s1", 1).await })
        .await
        .expect("join")
        .expect("load");
    let r = repo.clone();
    spawned(async move { r.load_as_of("s1", annals::chrono::Utc::now()).await })
        .await
        .expect("join")
        .expect("load");
    let r = repo.clone();
    spawned(async move { r.history("s1").await })
        .await
        .expect("join")
        .expect("history");
    let s = store.clone();
    let event = NewEvent::new(
        "Pinged",
        1,
        serde_json::value::to_raw_value(&1).expect("json"),
    )
    .expect("a valid event name");
    spawned(async move { s.append("ping-1", ExpectedVersion::Any, vec![event]).await })
        .await
        .expect("join")
        .expect("append");
    let s = store.clone();
    spawned(async move { s.read_stream("ping-1", ..).await })
        .await
        .expect("join")
        .expect("read");
    let s = store.clone();
    spawned(async move { s.read_all(Checkpoint::START, 10).await })
        .await
        .expect("join")
        .expect("read");
    let s = store.clone();
    spawned(async move {
        s.fold_stream("ping-1", VersionRange::new(..), |_| {
            Ok::<_, annals::StoreError>(())
        })
        .await
    })
    .await
    .expect("join")
    .expect("fold");
    let s = store.clone();
    spawned(async move {
        s.catch_up(Checkpoint::START, |_, _| Ok::<_, annals::StoreError>(()))
            .await
    })
    .await
    .expect("join")
    .expect("catch up");
    let s = store.clone();
    spawned(async move { s.stream_version("ping-1").await })
        .await
        .expect("join")
        .expect("version");
    let s = store.clone();
    let report = spawned(async move { annals::schema::verify(&s).await })
        .await
        .expect("join")
        .expect("verify");
    // What it counts depends on the read horizon (PostgreSQL): that it ran is the point.
    drop(report);
    // The read side's: a catch-up, a rebuild (in parts where the store keeps them), a wait.
    use annals::projection::{Runner, wait_for_projection};
    use annals_tests::views::Sharded;
    let runner = Runner::new(store.clone()).with::<Sharded>();
    let runner = spawned(async move { runner.catch_up().await.map(|()| runner) })
        .await
        .expect("join")
        .expect("catch up");
    spawned(async move { runner.rebuild::<Sharded>(|_| {}).await })
        .await
        .expect("join")
        .expect("rebuild");
    let s = store.clone();
    spawned(async move {
        wait_for_projection::<Sharded, _>(&s, Checkpoint::START, std::time::Duration::from_secs(5))
            .await
    })
    .await
    .expect("join")
    .expect("wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_future_spawns() {
    let dir = annals_tests::TempDir::new("annals-spawn");
    let path = dir.path().join("events.db");
    let sqlite = spawned(SqliteStore::open(path.clone()))
        .await
        .expect("join")
        .expect("open");
    let url = format!("sqlite://{}", dir.path().join("url.db").display());
    let by_url = spawned(async move { SqliteStore::connect(&url).await })
        .await
        .expect("join")
        .expect("connect");
    let memory = spawned(SqliteStore::in_memory())
        .await
        .expect("join")
        .expect("open");
    let schema = format!("annals_t_{}", annals::uuid::Uuid::now_v7().simple());
    let options = PostgresOptions::new(annals_tests::database_url()).schema(schema.clone());
    let postgres = spawned(PostgresStore::connect_with(options))
        .await
        .expect("join")
        .expect("connect");
    let _guard = annals_tests::SchemaGuard::new(schema);
    spawn_each(MemoryStore::new()).await;
    spawn_each(sqlite).await;
    spawn_each(by_url).await;
    spawn_each(memory).await;
    spawn_each(postgres).await;
}
