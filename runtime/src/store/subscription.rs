//! Catch-up-then-live subscriptions to all events, built on `read_all` for every store.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{EventStore, StoreError};
use crate::event::{Checkpoint, RecordedEvent};

/// How a subscription reads.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SubscriptionOptions {
    /// Events read per query; also how many may wait, read but unconsumed.
    pub page_size: usize,
    /// How long to wait for an append signal before reading anyway. Bounds the delay when
    /// a signal is lost, or when events are held back behind a still-running transaction.
    pub poll_interval: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            page_size: 512,
            poll_interval: Duration::from_millis(250),
        }
    }
}

impl SubscriptionOptions {
    /// Sets the page size (at least 1).
    #[must_use]
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Sets the polling fallback interval.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
}

/// A live feed of every event after a checkpoint, in global order, each exactly once.
///
/// Reading happens in a background task that pauses while the consumer is behind, so
/// memory stays bounded by one page. A read error is delivered as an item and the
/// subscription retries from the same checkpoint at its next poll. A stored row that
/// cannot be read comes after every event before it, as a `StoreError::Corrupt` naming
/// its checkpoint: the consumer stops, or passes the row on purpose with
/// [`skip_past`](Self::skip_past); nothing is skipped otherwise. Dropping the
/// subscription stops the task. Must be created inside a Tokio runtime.
///
/// ```
/// use annals::prelude::*;
/// use annals::{Checkpoint, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let mut feed = store.subscribe(Checkpoint::START);
/// let event = NewEvent::new("Pinged", 1, serde_json::value::to_raw_value(&1)?)?;
/// store.append("ping-1", ExpectedVersion::Any, vec![event]).await?;
/// let received = feed.next().await.expect("open")?;
/// assert_eq!(received.stream_id, "ping-1");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<Result<RecordedEvent, StoreError>>,
    skip: watch::Sender<Option<Checkpoint>>,
    task: tokio::task::AbortHandle,
}

impl Subscription {
    /// Starts reading `store` after `from`.
    pub fn start<S: EventStore>(store: S, from: Checkpoint, options: SubscriptionOptions) -> Self {
        let (sender, events) = mpsc::channel(options.page_size.max(1));
        let (skip, skips) = watch::channel(None);
        let task = tokio::spawn(feed(store, from, options, sender, skips)).abort_handle();
        Self { events, skip, task }
    }

    /// Goes on after `checkpoint`, the checkpoint of a row that cannot be read (from its
    /// `StoreError::Corrupt`), instead of reading that row again: the consumer's decision,
    /// logged as a warning. A checkpoint the subscription has passed already changes
    /// nothing.
    ///
    /// ```
    /// use annals::{StoreError, Subscription};
    ///
    /// async fn consume(mut feed: Subscription) {
    ///     while let Some(item) = feed.next().await {
    ///         match item {
    ///             Ok(event) => { /* apply it */ }
    ///             // This consumer decides that an unreadable row is not worth stopping for.
    ///             Err(StoreError::Corrupt { checkpoint: Some(at), .. }) => feed.skip_past(at),
    ///             Err(error) => { /* stop, or wait for the store to come back */ }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn skip_past(&mut self, checkpoint: Checkpoint) {
        self.skip.send_replace(Some(checkpoint));
    }

    /// The next event, waiting for one to be appended if needed.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        self.events.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl futures_core::Stream for Subscription {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

async fn feed<S: EventStore>(
    store: S,
    mut cursor: Checkpoint,
    options: SubscriptionOptions,
    sender: mpsc::Sender<Result<RecordedEvent, StoreError>>,
    mut skips: watch::Receiver<Option<Checkpoint>>,
) {
    let mut signal = store.append_signal();
    let page_size = options.page_size.max(1);
    loop {
        // Mark the signal seen before reading: an append during the read wakes us again.
        if let Some(signal) = &mut signal {
            signal.borrow_and_update();
        }
        if let Some(skip) = *skips.borrow_and_update() {
            if skip > cursor {
                tracing::warn!(%cursor, %skip, "subscription skips past an unreadable event, as its consumer asked");
                cursor = skip;
            }
        }
        match store.read_all(cursor, page_size).await {
            Ok(events) => {
                let full = events.len() == page_size;
                for event in events {
                    cursor = event.checkpoint();
                    if sender.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                if full {
                    continue;
                }
            }
            Err(error) => {
                tracing::warn!(%cursor, %error, "subscription read failed; retrying");
                if sender.send(Err(error)).await.is_err() {
                    return;
                }
            }
        }
        // Until an append, the poll interval, or the consumer's decision to skip.
        let appended = async {
            match &mut signal {
                Some(receiver) => receiver.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            open = appended => {
                if !open {
                    signal = None;
                }
            }
            _ = skips.changed() => {}
            () = tokio::time::sleep(options.poll_interval) => {}
        }
    }
}
