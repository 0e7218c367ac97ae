//! The upcast chain: how a stored old version of an event decodes as the newest one.

use super::{DecodeErrorKind, Event, RecordedEvent};

/// An upcaster that reads the old event's stored record: its recorded time, metadata,
/// stream and position, to fill a new field the old version never had.
///
/// The plain upcaster is `impl From<Old> for New`; every such impl is an `UpcastFrom` too.
/// Implement this trait instead (not both) when the conversion needs the record. The
/// derive checks at compile time that the link has one or the other.
///
/// An aggregate whose events decode through such an upcaster loads full records instead of
/// the lean rows it reads otherwise; code that decodes lean views itself
/// ([`EventStore::fold_all`](crate::EventStore::fold_all), `catch_up`) gets
/// [`DecodeErrorKind::RecordNeeded`] for those events and should read records instead.
///
/// ```
/// use annals::prelude::*;
/// use annals::UpcastFrom;
/// use annals::chrono::{DateTime, Utc};
///
/// #[derive(Event, Deserialize)]
/// #[event(name = "Opened", version = 1)]
/// struct OpenedV1 { owner: String }
///
/// #[derive(Event, Serialize, Deserialize)]
/// #[event(version = 2, previous = OpenedV1)]
/// struct Opened { owner: String, opened_at: DateTime<Utc> }
///
/// impl UpcastFrom<OpenedV1> for Opened {
///     fn upcast_from(v1: OpenedV1, record: &RecordedEvent) -> Self {
///         Opened { owner: v1.owner, opened_at: record.recorded_at }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let stored = annals::MemoryStore::new();
/// let v1 = NewEvent::new("Opened", 1, serde_json::value::to_raw_value(&serde_json::json!({ "owner": "ann" }))?)?;
/// stored.append("account-1", ExpectedVersion::NoStream, vec![v1]).await?;
/// let record = &stored.read_stream("account-1", ..).await?[0];
/// let opened = Opened::decode_record(record).expect("in the chain")?;
/// assert_eq!(opened.opened_at, record.recorded_at);
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "no upcaster from `{Old}` to `{Self}`",
    label = "`{Self}` names `{Old}` as its previous version",
    note = "write the upcaster: `impl From<{Old}> for {Self}`, or `impl annals::UpcastFrom<{Old}> for {Self}` to read the old event's stored record"
)]
pub trait UpcastFrom<Old>: Sized {
    /// Converts one stored event of the previous version, given its stored record.
    fn upcast_from(old: Old, record: &RecordedEvent) -> Self;

    /// Whether [`upcast_from`](Self::upcast_from) reads the record: true but for `From`
    /// upcasters.
    #[doc(hidden)]
    const READS_RECORD: bool = true;

    /// Converts without the record, when this upcaster does not read it.
    #[doc(hidden)]
    fn upcast_without_record(old: Old) -> Result<Self, Old> {
        Err(old)
    }
}

impl<Old, New: From<Old>> UpcastFrom<Old> for New {
    fn upcast_from(old: Old, _: &RecordedEvent) -> Self {
        New::from(old)
    }

    const READS_RECORD: bool = false;

    fn upcast_without_record(old: Old) -> Result<Self, Old> {
        Ok(New::from(old))
    }
}

/// The end of an upcasting chain: the predecessor of an event's first version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPrevious {}

/// A link of an upcasting chain: an event type that can stand as some event's predecessor,
/// or [`NoPrevious`].
///
/// Implemented for [`NoPrevious`] and for every [`Event`]; not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the previous version of an event",
    label = "not an event",
    note = "a previous version is an event type of its own: `#[derive(Event, Deserialize)]` with its `name` and `version`"
)]
pub trait PreviousEvent: Sized + Send + Sync + 'static {
    /// The link before this one; [`NoPrevious`] ends the chain (and is its own).
    type Before: PreviousEvent;
    /// This link's stored name (empty for [`NoPrevious`]).
    const NAME: &'static str;
    /// This link's version (0 for [`NoPrevious`]).
    const VERSION: u32;

    /// Decodes a stored (name, version) if it is this type or one of its predecessors, and
    /// upcasts it to `Next`.
    fn decode_upcast<Next: Event<Previous = Self>>(
        name: &str,
        version: u32,
        payload: &str,
        record: Option<&RecordedEvent>,
    ) -> Option<Result<Next, DecodeErrorKind>>;

    /// Whether decoding an older version as this link reads the stored record.
    fn reads_record() -> bool;

    /// The (name, version) of this link and of every one before it, newest first.
    fn chain(out: &mut Vec<(&'static str, u32)>);
}

// Not offered as "the trait is implemented for" help: the fix is an event type.
#[diagnostic::do_not_recommend]
impl PreviousEvent for NoPrevious {
    type Before = NoPrevious;
    const NAME: &'static str = "";
    const VERSION: u32 = 0;

    fn decode_upcast<Next: Event<Previous = Self>>(
        _: &str,
        _: u32,
        _: &str,
        _: Option<&RecordedEvent>,
    ) -> Option<Result<Next, DecodeErrorKind>> {
        None
    }

    fn reads_record() -> bool {
        false
    }

    fn chain(_: &mut Vec<(&'static str, u32)>) {}
}

impl<P: Event> PreviousEvent for P {
    type Before = P::Previous;
    const NAME: &'static str = P::NAME;
    const VERSION: u32 = P::VERSION;

    fn decode_upcast<Next: Event<Previous = Self>>(
        name: &str,
        version: u32,
        payload: &str,
        record: Option<&RecordedEvent>,
    ) -> Option<Result<Next, DecodeErrorKind>> {
        decode_chain::<P>(name, version, payload, record)
            .map(|previous| previous.and_then(|previous| Next::upcast(previous, record)))
    }

    fn reads_record() -> bool {
        P::upcast_reads_record()
    }

    fn chain(out: &mut Vec<(&'static str, u32)>) {
        out.push((P::NAME, P::VERSION));
        P::Previous::chain(out);
    }
}

/// Decodes a stored (name, version, payload) as `T` if the pair is `T`'s own or one of its
/// predecessors', upcasting step by step; `None` when the pair is in no link of the chain.
/// `record` is the stored record, for upcasters that read it, when the read carries it.
pub fn decode_chain<T: Event>(
    name: &str,
    version: u32,
    payload: &str,
    record: Option<&RecordedEvent>,
) -> Option<Result<T, DecodeErrorKind>> {
    // Versions first: a u32 comparison rejects most other links without reading the name.
    if version == T::VERSION && name == T::NAME {
        return Some(T::decode_payload(payload).map_err(DecodeErrorKind::Payload));
    }
    T::Previous::decode_upcast::<T>(name, version, payload, record)
}

/// The (name, version) of `T` and of every predecessor in its chain, newest first.
pub fn chain_of<T: Event>() -> Vec<(&'static str, u32)> {
    let mut out = vec![(T::NAME, T::VERSION)];
    T::Previous::chain(&mut out);
    out
}
