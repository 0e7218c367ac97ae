//! A given/when/then kit for testing aggregates without a store.

use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use crate::aggregate::{Aggregate, Handle};
use crate::event::EventSet;

/// Tests an aggregate's decisions: given past events, when a command, then events or an error.
///
/// Events are compared by name, version and serialised payload, so event types need not
/// implement `PartialEq`.
///
/// ```
/// use annals::prelude::*;
/// use annals::testing::AggregateTest;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Incremented { by: u32 }
/// struct Increment(u32);
///
/// #[derive(Debug, thiserror::Error, PartialEq)]
/// #[error("counter would exceed 10")]
/// struct TooBig;
///
/// #[derive(Default)]
/// struct Counter { value: u32 }
///
/// #[aggregate]
/// impl Counter {
///     #[command]
///     fn increment(&self, cmd: &Increment) -> Result<Incremented, TooBig> {
///         if self.value + cmd.0 > 10 { return Err(TooBig) }
///         Ok(Incremented { by: cmd.0 })
///     }
///     #[apply]
///     fn incremented(&mut self, e: &Incremented) { self.value += e.by }
/// }
///
/// AggregateTest::<Counter>::given([Incremented { by: 4 }])
///     .when(Increment(5))
///     .then_expect_events([Incremented { by: 5 }]);
/// AggregateTest::<Counter>::given([Incremented { by: 8 }])
///     .when(Increment(5))
///     .then_expect_error(TooBig);
/// ```
pub struct AggregateTest<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from the state these past events produce.
    pub fn given<E: Into<A::Event>>(events: impl IntoIterator<Item = E>) -> Self {
        let mut state = A::default();
        for event in events {
            state.apply(&event.into());
        }
        Self { state }
    }

    /// Starts from an aggregate with no history.
    pub fn given_no_history() -> Self {
        Self {
            state: A::default(),
        }
    }

    /// Runs `command` against the state (async commands are driven to completion).
    pub fn when<C>(self, command: C) -> Outcome<A, A::Error>
    where
        A: Handle<C>,
    {
        let result = block_on(self.state.handle(&command));
        Outcome {
            state: self.state,
            result,
        }
    }
}

/// The result of [`AggregateTest::when`], with assertions.
#[must_use = "an outcome asserts nothing until a `then_*` method is called"]
pub struct Outcome<A: Aggregate, E> {
    state: A,
    result: Result<Vec<A::Event>, E>,
}

impl<A: Aggregate, E: Debug> Outcome<A, E> {
    /// Asserts that the command produced exactly these events, in order, and returns the
    /// state with them applied.
    #[track_caller]
    pub fn then_expect_events<T: Into<A::Event>>(self, expected: impl IntoIterator<Item = T>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().map(Into::into).collect();
        let actual = match self.result {
            Ok(events) => events,
            Err(e) => panic!("expected events {expected:?}, but the command was rejected: {e:?}"),
        };
        let fingerprint = |events: &[A::Event]| -> Vec<(&'static str, u32, String)> {
            events
                .iter()
                .map(|e| {
                    let payload = e
                        .encode()
                        .map(|p| p.get().to_owned())
                        .unwrap_or_else(|err| format!("<{err}>"));
                    (e.event_name(), e.event_version(), payload)
                })
                .collect()
        };
        assert!(
            fingerprint(&actual) == fingerprint(&expected),
            "events differ\n  expected: {expected:?}\n    actual: {actual:?}"
        );
        let mut state = self.state;
        for event in &actual {
            state.apply(event);
        }
        state
    }

    /// Asserts that the command succeeded without recording anything.
    #[track_caller]
    pub fn then_expect_no_events(self) -> A {
        self.then_expect_events(std::iter::empty::<A::Event>())
    }

    /// Asserts that the command was rejected with `expected`.
    #[track_caller]
    pub fn then_expect_error(self, expected: E)
    where
        E: PartialEq,
    {
        match self.result {
            Err(actual) => assert!(
                actual == expected,
                "expected error {expected:?}, got {actual:?}"
            ),
            Ok(events) => {
                panic!("expected error {expected:?}, but the command produced {events:?}")
            }
        }
    }

    /// Asserts that the command was rejected with an error matching `predicate`.
    #[track_caller]
    pub fn then_expect_error_matches(self, predicate: impl FnOnce(&E) -> bool) {
        match self.result {
            Err(actual) => assert!(predicate(&actual), "error {actual:?} does not match"),
            Ok(events) => panic!("expected an error, but the command produced {events:?}"),
        }
    }

    /// The raw result, for custom assertions.
    pub fn into_result(self) -> Result<Vec<A::Event>, E> {
        self.result
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future to completion on this thread; commands are usually ready at once.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
