//! Support for the code the macros generate. Not public API: may change in any release.

mod checks;
mod projection;
mod snapshot;

pub use core::convert::Infallible;
pub use core::future::{Ready, ready};
pub use core::result::Result;
pub use std::vec::Vec;

pub use crate::event::{chain_of, decode_chain};
pub use crate::schema::EventType;
pub use checks::*;
pub use inventory;
pub use projection::*;
pub use snapshot::{decode_snapshot, encode_snapshot, fingerprint};

use serde_json::value::RawValue;

/// Collects what a fallible command returned. `into_events` is the user's return type's
/// `IntoEvents::into_events`, named at that type so a missing impl is reported there.
pub fn fallible<E, T, Err>(
    result: Result<T, Err>,
    into_events: fn(T, &mut Vec<E>),
) -> Result<Vec<E>, Err> {
    result.map(|t| {
        let mut out = Vec::new();
        into_events(t, &mut out);
        out
    })
}

/// Collects what an infallible command returned.
pub fn infallible<E, T>(t: T, into_events: fn(T, &mut Vec<E>)) -> Result<Vec<E>, Infallible> {
    fallible(Ok(t), into_events)
}

/// The boxed JSON an event set encodes to.
pub type RawPayload = Box<RawValue>;

/// Commands taken by value are cloned for each attempt of a retried command.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must implement `Clone` to be taken by value in a `#[command]`",
    label = "taken by value",
    note = "a command is run again when a concurrent append conflicts: derive `Clone`, or take `&{Self}`"
)]
pub trait RetryableCommand: Sized {
    /// A copy of the command for one attempt.
    fn clone_for_attempt(&self) -> Self;
}
impl<T: Clone> RetryableCommand for T {
    fn clone_for_attempt(&self) -> Self {
        self.clone()
    }
}

/// `a == b` for strings, usable in constants (duplicate event name checks).
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
