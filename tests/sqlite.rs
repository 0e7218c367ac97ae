//! SQLite: what only its one writer connection shows.

/// Group commit on SQLite: the conformance check of concurrent appends on a file, and
/// some of those appends shared a transaction (one sync of the log). A transaction takes
/// its recording time once, so the events of one group share it; appends committed one by
/// one, each waiting for its own sync, never do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_shares_transactions() {
    let fixture = annals_tests::sqlite_file().await;
    let events =
        annals_tests::conformance::concurrent_appends_settle_each_on_its_own(fixture.store.clone())
            .await;
    assert!(
        annals_tests::conformance::streams_share(&events, |e| e.recorded_at),
        "320 concurrent appends on one writer never shared a commit"
    );
}
