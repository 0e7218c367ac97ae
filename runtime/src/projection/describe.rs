//! A projection with its types erased, so one runner drives any mix of them, and the
//! registry that lists every projection of the program.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Change, DocumentProjection, HandlerError};
use crate::event::{DecodeError, StoredEvent};

/// A document or a decoded event, of a type only the projection's own functions know.
pub(crate) type Erased = Box<dyn Any + Send>;

/// A routed event, type-erased.
pub(crate) type ErasedRoute = Option<Result<(String, Erased), DecodeError>>;

/// One projection's identity and its operations, as plain functions over erased values.
#[derive(Clone, Copy)]
pub(crate) struct Described {
    pub name: &'static str,
    pub version: u32,
    pub reads_metadata: bool,
    pub stop_on_error: bool,
    pub dead_letters: bool,
    pub shards: u32,
    pub tries: u32,
    pub consumes: fn() -> Vec<(&'static str, u32)>,
    pub route: fn(&StoredEvent<'_>) -> ErasedRoute,
    pub new_document: fn() -> Erased,
    pub read_document: fn(&str) -> Result<Erased, serde_json::Error>,
    pub write_document: fn(&Erased) -> Option<Result<String, serde_json::Error>>,
    pub apply: fn(&mut Erased, Erased) -> Result<Change, HandlerError>,
}

impl std::fmt::Debug for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

impl Described {
    pub(crate) fn of<P: DocumentProjection>() -> Self {
        Self {
            name: P::NAME,
            version: P::VERSION,
            reads_metadata: P::reads_records(),
            stop_on_error: P::STOP_ON_ERROR,
            dead_letters: P::DEAD_LETTERS,
            shards: P::SHARDS,
            tries: P::TRIES,
            consumes: P::consumes,
            route: |event| {
                P::route(event).map(|routed| {
                    routed.map(|routed| (routed.key, Box::new(routed.event) as Erased))
                })
            },
            new_document: || Box::new(P::default()),
            read_document: |body| Ok(Box::new(serde_json::from_str::<P>(body)?)),
            write_document: |document| document.downcast_ref::<P>().map(serde_json::to_string),
            apply: |document, event| {
                let (Some(document), Ok(event)) =
                    (document.downcast_mut::<P>(), event.downcast::<P::Event>())
                else {
                    return Err(HandlerError::new(format!(
                        "a document or event of another type reached projection `{}`",
                        P::NAME
                    )));
                };
                // A panicking handler fails its event like an error: the runner stops the
                // projection before it and the batch's documents are thrown away.
                catch_unwind(AssertUnwindSafe(|| document.apply(*event)))
                    .unwrap_or_else(|panic| Err(HandlerError::panicked(panic.as_ref())))
            },
        }
    }
}

/// A projection registered by `#[projection]`, so that [`Runner::all`] finds it.
///
/// [`Runner::all`]: super::Runner::all
#[doc(hidden)]
pub struct Registration {
    kind: Kind,
}

pub(crate) enum Kind {
    Documents(fn() -> Described),
    /// Makes an `Arc<dyn SqlRun<S>>` for the store `S` of the projection's database.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    Tables(fn() -> Box<dyn std::any::Any + Send>),
}

impl Registration {
    /// The registration of `P`. Generated code only.
    #[doc(hidden)]
    pub const fn document<P: DocumentProjection>() -> Self {
        Self {
            kind: Kind::Documents(Described::of::<P>),
        }
    }

    /// The registration of SQL projection `P`. Generated code only.
    #[doc(hidden)]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub const fn tables<P: super::SqlProjection>() -> Self {
        Self {
            kind: Kind::Tables(|| Box::new(super::sql::erased::<P>())),
        }
    }
}

impl Registration {
    /// What was registered.
    pub(crate) fn kind(&self) -> &Kind {
        &self.kind
    }
}

inventory::collect!(Registration);
