//! The upcast chain: how a stored old version of an event decodes as the newest one.

use super::{DecodeErrorKind, Event};

/// The end of an upcasting chain: the predecessor of an event's first version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPrevious {}

/// A link of an upcasting chain: an event type that can stand as some event's predecessor,
/// or [`NoPrevious`].
///
/// Implemented for [`NoPrevious`] and for every deserialisable [`Event`]; not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the previous version of an event",
    label = "not a deserialisable event",
    note = "a previous version is an event type of its own: `#[derive(Event, Deserialize)]` with its `name` and `version`"
)]
pub trait PreviousEvent: Sized + Send + Sync + 'static {
    /// Decodes a stored (name, version) if it is this type or one of its predecessors, and
    /// upcasts it to `Next`.
    fn decode_upcast<Next: Event<Previous = Self>>(
        name: &str,
        version: u32,
        payload: &str,
    ) -> Option<Result<Next, DecodeErrorKind>>;
    /// The (name, version) of this link and of every one before it, newest first.
    fn chain(out: &mut Vec<(&'static str, u32)>);
}

impl PreviousEvent for NoPrevious {
    fn decode_upcast<Next: Event<Previous = Self>>(
        _: &str,
        _: u32,
        _: &str,
    ) -> Option<Result<Next, DecodeErrorKind>> {
        None
    }
    fn chain(_: &mut Vec<(&'static str, u32)>) {}
}

impl<P: Event + serde::de::DeserializeOwned> PreviousEvent for P {
    fn decode_upcast<Next: Event<Previous = Self>>(
        name: &str,
        version: u32,
        payload: &str,
    ) -> Option<Result<Next, DecodeErrorKind>> {
        decode_chain::<P>(name, version, payload).map(|r| r.map(Next::upcast))
    }
    fn chain(out: &mut Vec<(&'static str, u32)>) {
        out.push((P::NAME, P::VERSION));
        P::Previous::chain(out);
    }
}

/// Decodes a stored (name, version, payload) as `T` if the pair is `T`'s own or one of its
/// predecessors', upcasting step by step; `None` when the pair is in no link of the chain.
pub fn decode_chain<T: Event + serde::de::DeserializeOwned>(
    name: &str,
    version: u32,
    payload: &str,
) -> Option<Result<T, DecodeErrorKind>> {
    // Versions first: a u32 comparison rejects most other links without reading the name.
    if version == T::VERSION && name == T::NAME {
        return Some(serde_json::from_str(payload).map_err(DecodeErrorKind::Payload));
    }
    T::Previous::decode_upcast::<T>(name, version, payload)
}

/// The (name, version) of `T` and of every predecessor in its chain, newest first.
pub fn chain_of<T: Event>() -> Vec<(&'static str, u32)> {
    let mut out = vec![(T::NAME, T::VERSION)];
    T::Previous::chain(&mut out);
    out
}
