//! SQLite: what only its one writer connection shows.

use std::collections::{HashMap, HashSet};

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
    let mut streams_per_commit = HashMap::<_, HashSet<&str>>::new();
    for event in &events {
        streams_per_commit
            .entry(event.recorded_at)
            .or_default()
            .insert(&event.stream_id);
    }
    assert!(
        streams_per_commit.values().any(|s| s.len() > 1),
        "320 concurrent appends on one writer never shared a commit"
    );
}
