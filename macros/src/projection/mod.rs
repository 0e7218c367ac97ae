//! `#[projection]`: parse the impl block into a model, validate it, emit the
//! `Projection` and `DocumentProjection` impls and the registration.

mod emit;
mod parse;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Expr, Ident, ItemImpl, Pat, Signature, TypePath};

use crate::ctxt::Ctxt;

/// The model of one `#[projection]` impl block.
struct Model {
    /// The state type (the impl's self type).
    ident: Ident,
    name: String,
    version: u32,
    /// `of = Order`: the aggregates whose every event must be handled or ignored.
    of: Vec<TypePath>,
    ignore: Vec<TypePath>,
    handlers: Vec<Handler>,
    kind: Kind,
    /// What a failed batch does: `on_error = "..."`.
    on_error: OnError,
    /// `shards = N`: documents split into `N` parts by key.
    shards: u32,
    /// `tries = N`: tries of an event before it is dead-lettered (0: the runner's).
    tries: u32,
    /// `#[setup]` and `#[reset]` of a SQL projection.
    setup: Option<Ident>,
    reset: Option<Ident>,
}

/// What a failed batch does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnError {
    /// Try it again after a wait (the default).
    Retry,
    /// Halt the projection, visibly.
    Stop,
    /// After some tries, set the event aside, its document's later events behind it.
    DeadLetter,
}

/// What the projection's read model is.
enum Kind {
    /// One document per key: the state type, as JSON.
    Documents,
    /// Tables of its own, on this database (`sqlx::Sqlite`, `sqlx::Postgres`).
    Tables { database: Box<syn::Type> },
}

/// A `#[handle] fn name(&mut self, e: &Event)`, optionally with `meta: &EventMeta`.
struct Handler {
    method: Ident,
    event: TypePath,
    /// The event argument's pattern, bound for the key expression.
    pat: Pat,
    /// `#[handle(key = ...)]`; the stream id without one.
    key: Option<Expr>,
    meta: bool,
    sig: Signature,
    /// The database of an `async` (SQL) handler's transaction.
    database: Option<syn::Type>,
}

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let message = "`#[projection]` goes on an `impl` block: `#[projection] impl CustomerStats { ... }`";
            let mut out = syn::Error::new(Span::call_site(), message).to_compile_error();
            out.extend(input);
            return out;
        }
    };
    let mut cx = Ctxt::default();
    let model = parse::parse(&mut cx, args, &mut item);
    // The impl block always comes back, without our attributes; the impls only when the
    // model is whole, so one mistake is one error.
    let mut out = item.into_token_stream();
    if let Some(model) = model {
        if !cx.has_errors() {
            out.extend(emit::emit(&model));
        }
    }
    out.extend(cx.to_compile_errors());
    out
}
