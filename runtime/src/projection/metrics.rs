//! What projections report through the `metrics` facade: install any recorder (a
//! Prometheus exporter, say) and these appear, labelled by projection and version.

use std::time::Duration;

/// Events applied by batches that committed.
pub const EVENTS_APPLIED: &str = "annals_projection_events_applied_total";
/// How long each committed batch took, read to commit, in seconds.
pub const BATCH_SECONDS: &str = "annals_projection_batch_seconds";
/// Batches that failed (and are tried again).
pub const FAILURES: &str = "annals_projection_failures_total";
/// Events put in the dead letters (failed, or parked behind one that did).
pub const DEAD_LETTERS: &str = "annals_projection_dead_letters_total";
/// Events the projection has still to read, when its status was last read.
pub const LAG_EVENTS: &str = "annals_projection_lag_events";
/// Seconds since the oldest event it has still to read was stored, when its status was
/// last read.
pub const LAG_SECONDS: &str = "annals_projection_lag_seconds";

pub(super) fn batch(projection: &'static str, version: u32, events: usize, took: Duration) {
    let labels = [
        ("projection", projection.to_owned()),
        ("version", version.to_string()),
    ];
    metrics::counter!(EVENTS_APPLIED, &labels).increment(events as u64);
    metrics::histogram!(BATCH_SECONDS, &labels).record(took.as_secs_f64());
}

pub(super) fn failure(projection: &'static str, version: u32) {
    let labels = [
        ("projection", projection.to_owned()),
        ("version", version.to_string()),
    ];
    metrics::counter!(FAILURES, &labels).increment(1);
}

pub(super) fn dead_letters(projection: &'static str, version: u32, events: usize) {
    let labels = [
        ("projection", projection.to_owned()),
        ("version", version.to_string()),
    ];
    metrics::counter!(DEAD_LETTERS, &labels).increment(events as u64);
}

pub(super) fn lag(projection: &str, version: u32, events: u64, lag: Duration) {
    let labels = [
        ("projection", projection.to_owned()),
        ("version", version.to_string()),
    ];
    metrics::gauge!(LAG_EVENTS, &labels).set(events as f64);
    metrics::gauge!(LAG_SECONDS, &labels).set(lag.as_secs_f64());
}
