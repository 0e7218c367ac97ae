//! Group commit: concurrent appends leave in one statement and one commit.
//!
//! Every append joins a queue. Whoever finds a writer slot free becomes the leader: it takes
//! a batch from the queue (its own request among them, one request per stream), writes it
//! on its own connection, hands each request its outcome and, once its own request is
//! done, gives the slot back. The others wait, and take over a slot the moment one is
//! free while requests are still queued. There is no background task: an append on a
//! quiet store leads a batch of one and pays a lock and a channel, nothing else.
//!
//! A request whose batch could not settle it (its expected version did not match, the
//! statement failed, the leader was cancelled) gets [`Outcome::Alone`] and appends on its
//! own, where the store's usual path reports conflicts and recognises retries precisely.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore, SemaphorePermit, oneshot};

use super::AppendResult;

/// What became of one request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored by a batch.
    Done(AppendResult),
    /// Not settled by a batch: append on your own.
    Alone,
}

/// A request the coalescer can batch.
pub(crate) trait Request {
    /// Requests of one stream never share a batch: each checks its expected version
    /// against the stream as it was before the batch.
    fn stream(&self) -> &str;
    /// How many events it carries.
    fn len(&self) -> usize;
}

/// What writes a leader's batch: one statement or transaction, one commit.
pub(crate) trait Writer<R> {
    /// Writes `batch`; the outcomes, one per request in order (missing ones: `Alone`).
    fn write(&self, batch: &Batch<R>) -> impl Future<Output = Vec<Outcome>> + Send;
}

struct Pending<R> {
    request: R,
    reply: oneshot::Sender<Outcome>,
}

/// The group-commit queue of one store.
pub(crate) struct Coalescer<R> {
    queue: Mutex<VecDeque<Pending<R>>>,
    writers: Semaphore,
    /// Wakes one waiting request when a writer slot frees up with requests still queued.
    handoff: Notify,
    max_events: usize,
}

impl<R> std::fmt::Debug for Coalescer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("writers", &self.writers.available_permits())
            .field("max_events", &self.max_events)
            .finish_non_exhaustive()
    }
}

/// One request's place in the queue; see [`Ticket::next`].
pub(crate) struct Ticket<'a, R> {
    coalescer: &'a Coalescer<R>,
    reply: oneshot::Receiver<Outcome>,
    slot: Option<Slot<'a, R>>,
}

/// A writer slot; giving it back wakes a waiting request if any is still queued, also
/// when the leader holding it is cancelled mid-batch.
struct Slot<'a, R> {
    coalescer: &'a Coalescer<R>,
    permit: Option<SemaphorePermit<'a>>,
}

impl<R> Drop for Slot<'_, R> {
    fn drop(&mut self) {
        // Free the slot before waking anyone, so the woken request finds it free.
        drop(self.permit.take());
        if !self.coalescer.lock().is_empty() {
            self.coalescer.handoff.notify_one();
        }
    }
}

impl<R: Request> Ticket<'_, R> {
    /// The next step: the request's outcome, or a batch to write as the leader.
    pub(crate) async fn next(&mut self) -> Step<R> {
        let this = self.coalescer;
        let ticket = self;
        loop {
            match ticket.reply.try_recv() {
                Ok(outcome) => {
                    ticket.slot = None;
                    return Step::Settled(outcome);
                }
                // The leader holding it was cancelled: nothing says whether it committed.
                Err(oneshot::error::TryRecvError::Closed) => {
                    ticket.slot = None;
                    return Step::Settled(Outcome::Alone);
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if ticket.slot.is_none() {
                ticket.slot = this.writers.try_acquire().ok().map(|permit| Slot {
                    coalescer: this,
                    permit: Some(permit),
                });
            }
            if ticket.slot.is_some() {
                let batch = this.take_batch();
                // Empty: our request is in a batch another leader is writing.
                if !batch.pending.is_empty() {
                    return Step::Lead(batch);
                }
                ticket.slot = None;
            }
            let handoff = this.handoff.notified();
            tokio::pin!(handoff);
            // Registered before looking again, so a handoff in between is not lost.
            handoff.as_mut().enable();
            if this.writers.available_permits() > 0 && !this.lock().is_empty() {
                continue;
            }
            tokio::select! {
                biased;
                outcome = &mut ticket.reply => {
                    return Step::Settled(outcome.unwrap_or(Outcome::Alone));
                }
                () = handoff => {}
            }
        }
    }
}

/// What the caller of [`Ticket::next`] must do.
pub(crate) enum Step<R> {
    /// The request is settled.
    Settled(Outcome),
    /// Write this batch, then [`Batch::complete`] it and call `next` again.
    Lead(Batch<R>),
}

/// Requests a leader writes together.
pub(crate) struct Batch<R> {
    pending: Vec<Pending<R>>,
}

impl<R> Batch<R> {
    /// The requests, in queue order, each of a different stream.
    pub(crate) fn requests(&self) -> impl ExactSizeIterator<Item = &R> {
        self.pending.iter().map(|p| &p.request)
    }

    /// Hands out the outcomes, one per request in order; missing ones become `Alone`.
    pub(crate) fn complete(self, outcomes: Vec<Outcome>) {
        let mut outcomes = outcomes.into_iter();
        for pending in self.pending {
            // A requester that gave up no longer listens; its events are stored anyway,
            // as they would be had it appended alone and been cancelled after sending.
            let _ = pending
                .reply
                .send(outcomes.next().unwrap_or(Outcome::Alone));
        }
    }
}

impl<R> Coalescer<R> {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Pending<R>>> {
        // The queue is consistent after every operation: a panic elsewhere cannot tear it.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: Request> Coalescer<R> {
    /// A coalescer with `writers` concurrent batches of at most `max_events` events.
    pub(crate) fn new(writers: usize, max_events: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            writers: Semaphore::new(writers.max(1)),
            handoff: Notify::new(),
            max_events: max_events.max(1),
        }
    }

    /// Whether a request of `events` events may join a batch: small enough to share one.
    pub(crate) fn accepts(&self, events: usize) -> bool {
        events <= self.max_events
    }

    /// Queues `request` and drives it to its outcome. Whenever this caller leads a batch
    /// (its own request among others, or others' alone), `writer` writes it.
    pub(crate) async fn settle(&self, request: R, writer: &impl Writer<R>) -> Outcome {
        let mut ticket = self.enqueue(request);
        loop {
            match ticket.next().await {
                Step::Settled(outcome) => return outcome,
                Step::Lead(batch) => {
                    let outcomes = writer.write(&batch).await;
                    batch.complete(outcomes);
                }
            }
        }
    }

    /// Queues `request`; drive the ticket with [`Ticket::next`].
    pub(crate) fn enqueue(&self, request: R) -> Ticket<'_, R> {
        let (reply, receiver) = oneshot::channel();
        self.lock().push_back(Pending { request, reply });
        Ticket {
            coalescer: self,
            reply: receiver,
            slot: None,
        }
    }

    /// Up to `max_events` events' worth of queued requests, at most one per stream, in
    /// queue order; the rest stay queued.
    fn take_batch(&self) -> Batch<R> {
        let mut queue = self.lock();
        let mut pending: Vec<Pending<R>> = Vec::new();
        let mut events = 0;
        let mut i = 0;
        while i < queue.len() {
            let request = &queue[i].request;
            let fits = pending.is_empty() || events + request.len() <= self.max_events;
            let clash = pending
                .iter()
                .any(|p| p.request.stream() == request.stream());
            if !fits {
                break;
            }
            if clash {
                i += 1;
                continue;
            }
            events += request.len();
            if let Some(taken) = queue.remove(i) {
                pending.push(taken);
            }
        }
        Batch { pending }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Req(String, usize);

    impl Request for Req {
        fn stream(&self) -> &str {
            &self.0
        }
        fn len(&self) -> usize {
            self.1
        }
    }

    fn done(version: u64) -> Outcome {
        Outcome::Done(AppendResult {
            stream_version: version,
            first_position: 0,
            last_position: 0,
            transaction_id: 0,
            already_stored: false,
        })
    }

    /// Drives one request the way a store does, writing batches with `write`.
    async fn run(
        coalescer: &Coalescer<Req>,
        request: Req,
        batches: &Mutex<Vec<Vec<String>>>,
    ) -> Outcome {
        coalescer.settle(request, &Recorder(batches)).await
    }

    /// Writes nothing; records each batch's streams and settles every request.
    struct Recorder<'a>(&'a Mutex<Vec<Vec<String>>>);

    impl Writer<Req> for Recorder<'_> {
        async fn write(&self, batch: &Batch<Req>) -> Vec<Outcome> {
            let streams: Vec<String> = batch.requests().map(|r| r.0.clone()).collect();
            tokio::task::yield_now().await;
            let outcomes = (0..streams.len()).map(|i| done(i as u64 + 1)).collect();
            self.0.lock().unwrap().push(streams);
            outcomes
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_request_is_settled_once_and_batches_share_commits() {
        let coalescer = Arc::new(Coalescer::<Req>::new(1, 64));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let settled = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|t| {
                let (coalescer, batches, settled) =
                    (coalescer.clone(), batches.clone(), settled.clone());
                tokio::spawn(async move {
                    for i in 0..50 {
                        // Every fourth task shares a stream with another: never one batch.
                        let stream = format!("s-{}-{i}", t % 24);
                        let outcome = run(&coalescer, Req(stream, 1), &batches).await;
                        assert!(matches!(outcome, Outcome::Done(_)));
                        settled.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(settled.load(Ordering::Relaxed), 32 * 50);
        let batches = batches.lock().unwrap();
        let written: usize = batches.iter().map(Vec::len).sum();
        assert_eq!(written, 32 * 50, "each request written exactly once");
        for batch in batches.iter() {
            let mut streams = batch.clone();
            streams.sort();
            streams.dedup();
            assert_eq!(
                streams.len(),
                batch.len(),
                "one request per stream: {batch:?}"
            );
        }
        assert!(
            batches.len() < 32 * 50,
            "concurrent requests were never batched"
        );
    }

    #[tokio::test]
    async fn a_cancelled_leader_leaves_its_batch_to_append_alone() {
        let coalescer = Coalescer::<Req>::new(1, 64);
        let mut leader = coalescer.enqueue(Req("a".into(), 1));
        let mut follower = coalescer.enqueue(Req("b".into(), 1));
        let Step::Lead(batch) = leader.next().await else {
            panic!("the first request leads");
        };
        assert_eq!(batch.requests().len(), 2);
        drop(batch);
        drop(leader);
        assert!(matches!(
            follower.next().await,
            Step::Settled(Outcome::Alone)
        ));
    }

    #[tokio::test]
    async fn a_queued_request_takes_over_when_the_leader_is_done() {
        let coalescer = Coalescer::<Req>::new(1, 1);
        let mut first = coalescer.enqueue(Req("a".into(), 1));
        let mut second = coalescer.enqueue(Req("b".into(), 1));
        let Step::Lead(batch) = first.next().await else {
            panic!("the first request leads");
        };
        assert_eq!(batch.requests().len(), 1, "max_events caps the batch");
        batch.complete(vec![done(1)]);
        assert!(matches!(
            first.next().await,
            Step::Settled(Outcome::Done(_))
        ));
        let Step::Lead(batch) = second.next().await else {
            panic!("the second request leads once the slot is free");
        };
        batch.complete(vec![done(1)]);
        assert!(matches!(
            second.next().await,
            Step::Settled(Outcome::Done(_))
        ));
    }
}
