//! Counts the SQL statements sqlx sends, which for these systems is the number of network
//! round trips: every statement of a command waits for its answer before the next.
//!
//! sqlx logs each statement as a `tracing` event with target `sqlx::query`; all the systems
//! measured here go through sqlx 0.8, so one subscriber sees them all. Two kinds of round
//! trip are not logged and so not counted: connection pings (some pools ping on checkout)
//! and the `BEGIN` of a transaction opened with `begin()`. For systems that use either,
//! the count is a lower bound (add one per transaction). Counting is switched on only
//! around a counting pass, because formatting the log line costs time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::subscriber::Interest;
use tracing::{Event, Metadata, span};

static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

struct Counter;

impl tracing::Subscriber for Counter {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target() == "sqlx::query" {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query" && COUNTING.load(Ordering::Relaxed)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// Installs the counter as the global subscriber (once, at start-up).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(Counter);
}

/// Runs `f` with counting on and returns how many statements it sent.
pub async fn statements<F: Future>(f: F) -> (F::Output, u64) {
    STATEMENTS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f.await;
    COUNTING.store(false, Ordering::SeqCst);
    (out, STATEMENTS.load(Ordering::SeqCst))
}
