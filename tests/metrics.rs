//! Projections report through the `metrics` facade: a recorder installed for this test
//! binary sees events applied, batch times, failures, dead letters and lag, labelled by
//! projection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use annals::prelude::*;
use annals::projection::{Runner, metrics as names, status_of};
use annals_tests::domain::{Account, Deposit, Open};
use annals_tests::views::{Balance, Careful, Fragile};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Every sample of one histogram.
#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().expect("not poisoned").push(value);
    }
}

/// Counters and gauges as atomics, histograms as their samples, by name and labels.
#[derive(Default)]
struct Recorded {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

/// `name{label=value,...}`, labels in the order given.
fn id(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().expect("not poisoned");
        Counter::from_arc(counters.entry(id(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = self.gauges.lock().expect("not poisoned");
        Gauge::from_arc(gauges.entry(id(key)).or_default().clone())
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().expect("not poisoned");
        Histogram::from_arc(histograms.entry(id(key)).or_default().clone())
    }
}

fn counter(recorded: &Recorded, name: &str) -> u64 {
    recorded
        .counters
        .lock()
        .expect("not poisoned")
        .get(name)
        .map_or(0, |c| c.load(Ordering::Relaxed))
}

#[tokio::test]
async fn projections_report_through_the_metrics_facade() {
    let recorded: &'static Recorded = Box::leak(Box::default());
    metrics::set_global_recorder(recorded).expect("the only recorder of this binary");

    let store = annals::MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    for n in 0..5 {
        accounts
            .execute(&format!("{n}"), Open("ann".into()))
            .await
            .expect("open");
        accounts
            .execute(&format!("{n}"), Deposit(1))
            .await
            .expect("deposit");
    }
    Runner::new(store.clone())
        .with::<Balance>()
        .catch_up()
        .await
        .expect("caught up");
    let applied = format!("{}{{projection=balances,version=1}}", names::EVENTS_APPLIED);
    assert_eq!(counter(recorded, &applied), 10);
    let batches = format!("{}{{projection=balances,version=1}}", names::BATCH_SECONDS);
    let samples = recorded.histograms.lock().expect("not poisoned")[&batches]
        .0
        .lock()
        .expect("not poisoned")
        .clone();
    assert!(!samples.is_empty() && samples.iter().all(|s| *s >= 0.0));

    // A failing batch is counted each time it is tried; the status sets the lag.
    accounts.execute("0", Deposit(13)).await.expect("deposit");
    let running = Runner::new(store.clone())
        .with::<Fragile>()
        .options(
            annals::projection::RunnerOptions::default().retry_interval(Duration::from_millis(5)),
        )
        .start();
    let failures = format!("{}{{projection=fragile,version=1}}", names::FAILURES);
    for _ in 0..400 {
        if counter(recorded, &failures) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(counter(recorded, &failures) >= 2, "retried and counted");
    let status = status_of::<Fragile, _>(&store).await.expect("status");
    assert_eq!(status.lag_events, 1);
    let lag = format!("{}{{projection=fragile,version=1}}", names::LAG_EVENTS);
    let gauge = recorded.gauges.lock().expect("not poisoned")[&lag].load(Ordering::Relaxed);
    assert_eq!(f64::from_bits(gauge), 1.0);
    running.shutdown().await.expect("a clean stop");

    // Events set aside are counted, the poison and the one parked behind it.
    accounts.execute("0", Deposit(2)).await.expect("deposit");
    Runner::new(store.clone())
        .with::<Careful>()
        .options(annals::projection::RunnerOptions::default().dead_letter_after(1))
        .catch_up()
        .await
        .expect("caught up");
    let dead = format!("{}{{projection=careful,version=1}}", names::DEAD_LETTERS);
    assert_eq!(counter(recorded, &dead), 2);
}
