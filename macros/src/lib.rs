//! Procedural macros for annals. Use them through the `annals` crate, which re-exports them.

mod aggregate;
mod check;
mod ctxt;
mod event;
mod marker;
mod method;
mod options;
mod projection;
mod snapshot;

use proc_macro::TokenStream;

/// Implements `annals::Event`: a stable name (default: the type's name) and a schema
/// version (default: 1), set with `#[event(name = "...", version = N)]`.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    event::expand(&input).into()
}

/// Implements `annals::Snapshot` for an aggregate's state type: a fingerprint of the
/// type's definition, so changing a field invalidates snapshots taken before. Needed, with
/// `Serialize` and `Deserialize`, by `#[aggregate(snapshot_every = N)]`.
#[proc_macro_derive(Snapshot)]
pub fn derive_snapshot(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    snapshot::expand(&input).into()
}

/// Turns an `impl` block with `#[command]` and `#[apply]` methods into an aggregate: the
/// event enum, the `Aggregate` impl and one command handler per command type.
///
/// Options: `category = "..."` (stream id prefix, default: the type's name in snake case),
/// `event_enum = Name` (default: the type's name followed by `Event`), `snapshot_every = N`
/// (take a snapshot every N events; the state derives `Snapshot`, `Serialize` and
/// `Deserialize`) and `snapshot_version = M` (bump to invalidate snapshots by hand; the
/// state type and the `#[apply]` code are fingerprinted without it).
///
/// The event enum is always `pub`: an `impl` block does not tell the macro how visible the
/// aggregate is, and `Aggregate::Event` must be at least as visible as the aggregate, or
/// the impl does not compile. It still reaches no further than the module it is declared
/// in allows, and it carries `#[allow(private_interfaces)]`, so private event types in a
/// private module compile without warnings. Give the enum another name with `event_enum`.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::expand(args.into(), input.into()).into()
}

/// Marks a method of an `#[aggregate]` impl block as the one that applies an event type:
/// `fn opened(&mut self, e: &Opened)`. `#[aggregate]` removes it; anywhere else it is an
/// error.
#[proc_macro_attribute]
pub fn apply(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_aggregate("apply", input.into()).into()
}

/// Marks a method of an `#[aggregate]` impl block as the handler of a command type:
/// `fn open(&self, cmd: Open) -> Result<Opened, AccountError>`. `#[aggregate]` removes it;
/// anywhere else it is an error.
#[proc_macro_attribute]
pub fn command(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_aggregate("command", input.into()).into()
}

/// Turns an `impl` block with `#[handle]` methods into a projection: a read model with
/// one document per key, which a `Runner` keeps up to date and `Documents` reads.
///
/// Options: `name = "..."` (default: the type's name in snake case; lowercase letters,
/// digits and `_`), `version = N` (default 1; bump it to build a new read model), `of =
/// Aggregate` or `of(A, B)` (every event of those aggregates must be handled or listed in
/// `ignore(...)`, checked at compile time), `on_error = "stop"` (a failed batch halts the
/// projection instead of being tried again) or `on_error = "dead_letter"` (an event whose
/// handler keeps failing is set aside with the later events of its document, or of its
/// stream for a SQL projection, after `tries = N` tries or the runner's
/// `dead_letter_after`),
/// `shards = N` (documents split into `N` parts by key, each with its own checkpoint and
/// lease, so several runners share the work). Each `#[handle]` method takes `&mut self`, the
/// event by reference and optionally `&EventMeta`; `#[handle(key = e.customer_id)]` names
/// the document (default: the event's stream id).
#[proc_macro_attribute]
pub fn projection(args: TokenStream, input: TokenStream) -> TokenStream {
    projection::expand(args.into(), input.into()).into()
}

/// Marks a method of a `#[projection]` impl block as the handler of an event type:
/// `fn placed(&mut self, e: &OrderPlaced)`. `#[projection]` removes it; anywhere else it
/// is an error.
#[proc_macro_attribute]
pub fn handle(_args: TokenStream, input: TokenStream) -> TokenStream {
    let message = "`#[handle]` only works on methods inside a `#[projection]` impl block";
    let mut out = syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error();
    out.extend(proc_macro2::TokenStream::from(input));
    out.into()
}

/// The error for `#[apply]` or `#[command]` that no `#[aggregate]` removed, pointing at the
/// attribute, followed by the item unchanged so it reports nothing more.
fn outside_aggregate(name: &str, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let message = format!("`#[{name}]` only works on methods inside an `#[aggregate]` impl block");
    let mut out = syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error();
    out.extend(item);
    out
}
