//! The compile-time checks of upcast chains: an upcaster exists, versions are distinct,
//! lower and contiguous, names match, and an aggregate applies the newest version.

/// A version check's outcome, as a type: only `Check<true>` implements the check traits.
pub struct Check<const OK: bool>;

/// The upcaster `#[event(previous = ...)]` calls: any `From<Prev>` impl.
#[diagnostic::on_unimplemented(
    message = "no upcaster from `{Prev}` (v{PV}) to `{Self}` (v{CV})",
    label = "`{Self}` names `{Prev}` as its previous version",
    note = "write the upcaster: `impl From<{Prev}> for {Self}`"
)]
pub trait Upcaster<Prev, const PV: u32, const CV: u32>: Sized {
    /// Converts one event of the previous version.
    fn upcast(previous: Prev) -> Self;
}
impl<Prev, Cur: From<Prev>, const PV: u32, const CV: u32> Upcaster<Prev, PV, CV> for Cur {
    fn upcast(previous: Prev) -> Self {
        Cur::from(previous)
    }
}

/// Rule: a chain holds each version once.
#[diagnostic::on_unimplemented(
    message = "duplicate version {CV} in the chain of `{Cur}`: its previous version `{Prev}` is also v{PV}",
    label = "also v{PV}",
    note = "give every version of an event its own number, counting up from 1"
)]
pub trait DistinctVersion<Prev, Cur, const PV: u32, const CV: u32> {}
impl<Prev, Cur, const PV: u32, const CV: u32> DistinctVersion<Prev, Cur, PV, CV> for Check<true> {}

/// Rule: a predecessor's version is lower than its successor's.
#[diagnostic::on_unimplemented(
    message = "`{Prev}` (v{PV}) cannot be the previous version of `{Cur}` (v{CV}): its version must be lower",
    label = "v{PV} is newer than v{CV}",
    note = "`previous` names the older type; swap the two types' `version` numbers if they are reversed"
)]
pub trait LowerVersion<Prev, Cur, const PV: u32, const CV: u32> {}
impl<Prev, Cur, const PV: u32, const CV: u32> LowerVersion<Prev, Cur, PV, CV> for Check<true> {}

/// Rule: versions in a chain are contiguous, unless the successor says `allow_gap`.
#[diagnostic::on_unimplemented(
    message = "version gap in the chain of `{Cur}`: `{Prev}` is v{PV} and `{Cur}` is v{CV}",
    label = "versions between v{PV} and v{CV} are missing",
    note = "declare the missing versions, or add `allow_gap` to `#[event(...)]` on `{Cur}` if they never existed"
)]
pub trait NoGap<Prev, Cur, const PV: u32, const CV: u32> {}
impl<Prev, Cur, const PV: u32, const CV: u32> NoGap<Prev, Cur, PV, CV> for Check<true> {}

/// Rule: a predecessor with another stored name needs `renamed` on the successor.
#[diagnostic::on_unimplemented(
    message = "`{Prev}` (v{PV}) is stored under another name than `{Cur}` (v{CV})",
    label = "another event name",
    note = "add `renamed` to `#[event(...)]` on `{Cur}` if the rename is intended"
)]
pub trait SameName<Prev, Cur, const PV: u32, const CV: u32> {}
impl<Prev, Cur, const PV: u32, const CV: u32> SameName<Prev, Cur, PV, CV> for Check<true> {}

/// Probes for the rules above: `#[derive(Event)]` calls each with the check's outcome.
pub const fn distinct_version<
    C: DistinctVersion<P, N, PV, CV>,
    P,
    N,
    const PV: u32,
    const CV: u32,
>() {
}
/// See [`distinct_version`].
pub const fn lower_version<C: LowerVersion<P, N, PV, CV>, P, N, const PV: u32, const CV: u32>() {}
/// See [`distinct_version`].
pub const fn no_gap<C: NoGap<P, N, PV, CV>, P, N, const PV: u32, const CV: u32>() {}
/// See [`distinct_version`].
pub const fn same_name<C: SameName<P, N, PV, CV>, P, N, const PV: u32, const CV: u32>() {}

/// decoding upcasts the old one). One old version has one successor.
pub trait Superseded {}

/// `<SupersededProbe<T>>::SUPERSEDED` is `true` when `T: Superseded`: the inherent
/// constant exists only then, and takes precedence over the trait's default.
pub struct SupersededProbe<T: ?Sized>(core::marker::PhantomData<T>);

/// The fallback for [`SupersededProbe`].
pub trait NotSuperseded {
    /// Not superseded, unless the inherent constant says otherwise.
    const SUPERSEDED: bool = false;
}
impl<T: ?Sized> NotSuperseded for SupersededProbe<T> {}
impl<T: ?Sized + Superseded> SupersededProbe<T> {
    /// Superseded.
    pub const SUPERSEDED: bool = true;
}
