//! `#[aggregate]`: parse the impl block into a model, validate it, emit the event enum,
//! the `Aggregate` impl and one `Handle` impl per command.

mod check;
mod emit;
mod parse;

pub(crate) use parse::snake_case;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Ident, ItemImpl, Type, TypePath};

use crate::ctxt::Ctxt;

/// The model of one `#[aggregate]` impl block.
struct Model {
    /// The aggregate type (the impl's self type).
    ident: Ident,
    category: String,
    event_enum: Ident,
    applies: Vec<Apply>,
    commands: Vec<Command>,
    /// Set by `snapshot_every`.
    snapshots: Option<Snapshots>,
}

/// `snapshot_every = N`, with the aggregate's part of the snapshot fingerprint.
struct Snapshots {
    every: u64,
    /// FNV-1a over `snapshot_version` and every `#[apply]` method (signature and body);
    /// combined at compile time with the state type's `Snapshot::STATE_FINGERPRINT`.
    fingerprint: u64,
}

/// An `#[apply] fn name(&mut self, e: &Event)`.
struct Apply {
    method: Ident,
    event: TypePath,
    variant: Ident,
    /// False when the method's shape is wrong (already reported): the event keeps its
    /// variant, so code using it reports nothing more, but the method is not called.
    callable: bool,
}

/// A `#[command] fn name(&self, cmd: C) -> Result<T, E>` (or `-> T`, or `&C`, or `async`).
struct Command {
    method: Ident,
    command: TypePath,
    by_ref: bool,
    is_async: bool,
    /// `None` when the return type could not be understood (already reported).
    output: Option<Output>,
    /// False when the method's shape is wrong (already reported): the handler is a stub,
    /// so code sending the command reports nothing more.
    callable: bool,
    /// `#[command(create)]`: the command usually starts its aggregate's stream.
    creates: bool,
}

/// What a command returns: `T` or `Result<T, E>`.
struct Output {
    ok: Type,
    error: Option<Type>,
}

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => return not_an_impl(input),
    };
    let mut cx = Ctxt::default();
    let model = parse::parse(&mut cx, args, &mut item);
    // The user's impl block always comes back (without our method attributes), and so do
    // the enum and impls for every part that is valid: a mistake in one method does not
    // hide the others behind "method not found" or "trait not implemented" errors.
    let mut out = item.into_token_stream();
    if let Some(mut model) = model {
        check::validate(&mut cx, &mut model);
        out.extend(emit::emit(&model));
    }
    out.extend(cx.to_compile_errors());
    out
}

/// `#[aggregate]` on something other than an `impl` block: the error points at the item.
fn not_an_impl(input: TokenStream) -> TokenStream {
    const MESSAGE: &str =
        "`#[aggregate]` goes on an `impl` block: `#[aggregate] impl Account { ... }`";
    let error = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(item) => syn::Error::new_spanned(item_head(&item), MESSAGE),
        Err(_) => syn::Error::new(Span::call_site(), MESSAGE),
    };
    let mut out = error.to_compile_error();
    out.extend(input);
    out
}

/// The tokens that name an item (`struct Account`, `fn main`), to point errors at.
fn item_head(item: &syn::Item) -> TokenStream {
    use syn::Item;
    match item {
        Item::Struct(i) => head(&i.struct_token, &i.ident),
        Item::Enum(i) => head(&i.enum_token, &i.ident),
        Item::Union(i) => head(&i.union_token, &i.ident),
        Item::Fn(i) => head(&i.sig.fn_token, &i.sig.ident),
        Item::Trait(i) => head(&i.trait_token, &i.ident),
        Item::Mod(i) => head(&i.mod_token, &i.ident),
        Item::Type(i) => head(&i.type_token, &i.ident),
        other => other.to_token_stream(),
    }
}

fn head(keyword: &dyn ToTokens, ident: &Ident) -> TokenStream {
    quote!(#keyword #ident)
}

#[cfg(test)]
mod tests;
