//! What a runner drives: a document projection as plain functions, or a SQL projection's
//! type-erased entry.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::sync::Arc;

use super::super::describe::{Described, Kind, Registration};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use super::super::sql::SqlRun;

/// A projection a runner drives: documents, or tables of its own.
pub(crate) enum Job<S> {
    Documents(Described),
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    Tables(Arc<dyn SqlRun<S>>),
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[allow(dead_code)]
    Never(
        std::marker::PhantomData<fn() -> S>,
        std::convert::Infallible,
    ),
}

impl<S> Clone for Job<S> {
    fn clone(&self) -> Self {
        match self {
            Job::Documents(d) => Job::Documents(*d),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => Job::Tables(Arc::clone(run)),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        }
    }
}

impl<S> std::fmt::Debug for Job<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} v{}", self.name(), self.version())
    }
}

impl<S> Job<S> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Job::Documents(d) => d.name,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => run.name(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        }
    }

    /// Whether a failure halts it (`on_error = "stop"`).
    pub(crate) fn stop_on_error(&self) -> bool {
        match self {
            Job::Documents(d) => d.stop_on_error,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => run.stop_on_error(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        }
    }

    /// Into how many parts its keys are split (`#[projection(shards = N)]`).
    pub(crate) fn shards(&self) -> u32 {
        match self {
            Job::Documents(d) => d.shards.max(1),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(_) => 1,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        }
    }

    /// How many times an event's handler is tried before the event goes to the dead
    /// letters: the projection's `tries`, or else the runner's `dead_letter_after`.
    pub(crate) fn tries(&self, options: &super::super::RunnerOptions) -> u32 {
        let own = match self {
            Job::Documents(d) => d.tries,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => run.tries(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        };
        if own > 0 {
            own
        } else {
            options.dead_letter_after
        }
    }

    /// Whether an event whose handler keeps failing goes to the dead letters
    /// (`on_error = "dead_letter"`, for document projections).
    pub(crate) fn dead_letters(&self) -> bool {
        match self {
            Job::Documents(d) => d.dead_letters,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => run.dead_letters(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        }
    }

    /// The stored names of the events it consumes, each once.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let consumes = match self {
            Job::Documents(d) => (d.consumes)(),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => run.consumes(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        };
        let mut names: Vec<&'static str> = consumes.into_iter().map(|(name, _)| name).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    pub(crate) fn version(&self) -> u32 {
        match self {
            Job::Documents(d) => d.version,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Job::Tables(run) => run.version(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Job::Never(_, never) => match *never {},
        }
    }
}

/// Every projection the program registered that runs on store `S`, by name and version:
/// every document projection, and the SQL projections written for `S`'s database.
pub(crate) fn registered<S: 'static>() -> Vec<Job<S>> {
    let mut all: Vec<Job<S>> = inventory::iter::<Registration>
        .into_iter()
        .filter_map(|r| match r.kind() {
            Kind::Documents(describe) => Some(Job::Documents(describe())),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Kind::Tables(make) => make()
                .downcast::<Arc<dyn SqlRun<S>>>()
                .ok()
                .map(|run| Job::Tables(*run)),
        })
        .collect();
    all.sort_by(|a, b| (a.name(), a.version()).cmp(&(b.name(), b.version())));
    all.dedup_by(|a, b| (a.name(), a.version()) == (b.name(), b.version()));
    all
}
