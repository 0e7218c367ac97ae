//! Procedural macros for annals. Use them through the `annals` crate, which re-exports them.

mod aggregate;
mod ctxt;
mod event;
mod options;

use proc_macro::TokenStream;

/// Implements `annals::Event`: a stable name (default: the type's name) and a schema
/// version (default: 1), set with `#[event(name = "...", version = N)]`.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    event::expand(&input).into()
}

/// Turns an `impl` block with `#[command]` and `#[apply]` methods into an aggregate: the
/// event enum, the `Aggregate` impl and one command handler per command type.
///
/// Options: `category = "..."` (stream id prefix, default: the type's name in snake case),
/// `event_enum = Name` (default: the type's name followed by `Event`).
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::expand(args.into(), input.into()).into()
}
