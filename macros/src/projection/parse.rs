//! Parsing a `#[projection]` impl block: its options, then each `#[handle]` method.

use proc_macro2::TokenStream;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ImplItem, ItemImpl, LitInt, LitStr, Signature, Token, Type, TypePath};

use super::{Handler, Kind, Model, OnError};
use crate::aggregate::snake_case;
use crate::ctxt::Ctxt;
use crate::marker::{self, Marker};
use crate::method::{ArgType, SelfParam, arg_type, arguments, self_param, type_key};
use crate::options;

const NAME: &str = "name";
const VERSION: &str = "version";
const OF: &str = "of";
const IGNORE: &str = "ignore";
const ON_ERROR: &str = "on_error";
const SHARDS: &str = "shards";
const TRIES: &str = "tries";
const OPTIONS: &[&str] = &[NAME, VERSION, OF, IGNORE, ON_ERROR, SHARDS, TRIES];
/// The most parts a projection is split into.
const MAX_SHARDS: u32 = 1024;
const KEY: &str = "key";
const HANDLE_OPTIONS: &[&str] = &[KEY];

/// The most bytes of a projection name.
const MAX_NAME: usize = 63;

const SHAPE: &str = "a `#[handle]` method takes `&mut self`, the event by reference and, if it needs them, the event's metadata: `fn placed(&mut self, e: &OrderPlaced)` or `fn placed(&mut self, e: &OrderPlaced, meta: &EventMeta)`";

/// The markers of a `#[projection]` block.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mark {
    Handle,
    Setup,
    Reset,
}

impl Marker for Mark {
    const ALL: &'static [(&'static str, Self)] = &[
        ("handle", Mark::Handle),
        ("setup", Mark::Setup),
        ("reset", Mark::Reset),
    ];
}

const TABLE_SHAPE: &str = "an `async` handler of a SQL projection takes the transaction, the event by reference and, if it needs them, the event's metadata: `async fn placed(tx: &mut Transaction<'_, Sqlite>, e: &OrderPlaced) -> Result<(), sqlx::Error>`";

const HOOK_SHAPE: &str = "`#[setup]` and `#[reset]` take the transaction alone: `async fn setup(tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error>`";

#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    version: Option<LitInt>,
    of: Option<Vec<TypePath>>,
    ignore: Option<Vec<TypePath>>,
    on_error: Option<LitStr>,
    shards: Option<LitInt>,
    tries: Option<LitInt>,
}

/// `= A` or `(A, B, ...)`.
fn types(meta: &syn::meta::ParseNestedMeta, example: &str) -> syn::Result<Vec<TypePath>> {
    if meta.input.peek(Token![=]) {
        let value: TypePath = options::value(meta, example)?;
        return Ok(vec![value]);
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let list = Punctuated::<TypePath, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

fn parse_options(cx: &mut Ctxt, args: TokenStream) -> Options {
    let mut o = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(NAME) {
            let value = options::value(&meta, "a string: `name = \"customer_stats\"`")?;
            options::set(cx, "projection", &meta, &mut o.name, value);
        } else if meta.path.is_ident(VERSION) {
            let value = options::value(&meta, "a number: `version = 2`")?;
            options::set(cx, "projection", &meta, &mut o.version, value);
        } else if meta.path.is_ident(OF) {
            let value = types(&meta, "aggregates: `of = Order` or `of(Order, Invoice)`")?;
            options::set(cx, "projection", &meta, &mut o.of, value);
        } else if meta.path.is_ident(ON_ERROR) {
            let value = options::value(
                &meta,
                "`\"retry\"`, `\"stop\"` or `\"dead_letter\"`: `on_error = \"stop\"`",
            )?;
            options::set(cx, "projection", &meta, &mut o.on_error, value);
        } else if meta.path.is_ident(SHARDS) {
            let value = options::value(&meta, "a number: `shards = 4`")?;
            options::set(cx, "projection", &meta, &mut o.shards, value);
        } else if meta.path.is_ident(TRIES) {
            let value = options::value(&meta, "a number: `tries = 5`")?;
            options::set(cx, "projection", &meta, &mut o.tries, value);
        } else if meta.path.is_ident(IGNORE) {
            let value = types(&meta, "event types: `ignore(OrderShipped, ItemRemoved)`")?;
            options::set(cx, "projection", &meta, &mut o.ignore, value);
        } else {
            options::unknown(cx, "projection", &meta, OPTIONS)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    }
    o
}

/// Whether `name` can name a projection: what SQL would take as a plain identifier.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME
}

pub(super) fn parse(cx: &mut Ctxt, args: TokenStream, item: &mut ItemImpl) -> Option<Model> {
    let options = parse_options(cx, args);
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "`#[projection]` goes on an inherent `impl` block, not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "`#[projection]` does not support generic projections: implement it for a concrete type",
        );
    }
    let ident = match &*item.self_ty {
        Type::Path(TypePath { qself: None, path })
            if path.segments.len() == 1 && path.segments[0].arguments.is_none() =>
        {
            Some(path.segments[0].ident.clone())
        }
        other => {
            cx.error_spanned_by(
                other,
                "`#[projection]` needs a plain type name: `impl CustomerStats { ... }`",
            );
            None
        }
    };

    let mut handlers: Vec<Handler> = Vec::new();
    let mut hooks = Hooks::default();
    let mut marked = 0;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            marker::misplaced::<Mark>(cx, impl_item);
            continue;
        };
        let markers = marker::take::<Mark>(&mut method.attrs);
        match marker::single(cx, &markers) {
            None => continue,
            Some(Mark::Handle) => {}
            Some(hook) => {
                hooks.take(cx, hook, &method.sig);
                continue;
            }
        }
        marked += 1;
        let key = handle_options(cx, &markers[0].1);
        if matches!(markers[0].1.meta, syn::Meta::List(_)) {
            // The event argument may serve the key alone: not an unused variable.
            method
                .attrs
                .push(syn::parse_quote!(#[allow(unused_variables)]));
        }
        let Some(handler) = parse_handler(cx, &method.sig, key) else {
            continue;
        };
        if let Some(first) = handlers
            .iter()
            .find(|h| type_key(&h.event) == type_key(&handler.event))
        {
            cx.error_spanned_by(
                &handler.event,
                format!(
                    "`{}` already has a handler, `{}`: a projection handles each event type once",
                    type_key(&handler.event),
                    first.method
                ),
            );
            continue;
        }
        handlers.push(handler);
    }
    if marked == 0 {
        cx.error_spanned_by(
            &item.self_ty,
            "a projection needs at least one `#[handle]` method: `#[handle] fn placed(&mut self, e: &OrderPlaced) { ... }`",
        );
    }

    let ignore = options.ignore.unwrap_or_default();
    for ignored in &ignore {
        if handlers
            .iter()
            .any(|h| type_key(&h.event) == type_key(ignored))
        {
            cx.error_spanned_by(
                ignored,
                format!(
                    "`{}` is both handled and ignored: remove it from `ignore(...)`",
                    type_key(ignored)
                ),
            );
        }
    }
    let of = options.of.unwrap_or_default();
    if of.is_empty() && !ignore.is_empty() {
        cx.error_spanned_by(
            &ignore[0],
            "`ignore(...)` lists events of the aggregates named in `of`: add `of = Aggregate`",
        );
    }

    let on_error = match &options.on_error {
        None => OnError::Retry,
        Some(lit) => match lit.value().as_str() {
            "retry" => OnError::Retry,
            "stop" => OnError::Stop,
            "dead_letter" => OnError::DeadLetter,
            other => {
                cx.error_spanned_by(
                    lit,
                    format!("`on_error` is `\"retry\"` (the default: try the batch again after a wait), `\"stop\"` (halt this projection, visibly) or `\"dead_letter\"` (set the event aside after some tries, its document's later events waiting behind it), not `\"{other}\"`"),
                );
                OnError::Retry
            }
        },
    };
    let kind = kind(cx, &handlers, &hooks);
    let tries = match &options.tries {
        None => 0,
        Some(lit) => match lit.base10_parse::<u32>() {
            Ok(n) if n >= 1 && on_error == OnError::DeadLetter => n,
            Ok(n) if n >= 1 => {
                cx.error_spanned_by(
                    lit,
                    "`tries` counts the tries of an event before it goes to the dead letters: add `on_error = \"dead_letter\"`",
                );
                0
            }
            _ => {
                cx.error_spanned_by(lit, "`tries` is a number from 1: `tries = 5`");
                0
            }
        },
    };
    let shards = match &options.shards {
        None => 1,
        Some(lit) => {
            match lit.base10_parse::<u32>() {
                Ok(n) if (1..=MAX_SHARDS).contains(&n) => {
                    if matches!(kind, Some(Kind::Tables { .. })) {
                        cx.error_spanned_by(
                        lit,
                        "shards split a document projection's documents by key: a SQL projection writes tables of its own, so it runs whole",
                    );
                    }
                    n
                }
                _ => {
                    cx.error_spanned_by(
                    lit,
                    format!("a projection's shards are a number from 1 to {MAX_SHARDS}: `shards = 4`"),
                );
                    1
                }
            }
        }
    };
    let ident = ident?;
    let name = match &options.name {
        Some(lit) => {
            let name = lit.value();
            if !valid_name(&name) {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "invalid projection name `{name}`: use lowercase ASCII letters, digits and `_`, starting with a letter, at most {MAX_NAME} bytes (`customer_stats`)"
                    ),
                );
            }
            name
        }
        None => {
            let name = snake_case(&ident.to_string());
            if !valid_name(&name) {
                cx.error_spanned_by(
                    &ident,
                    format!(
                        "this type's name makes the projection name `{name}`, which is not one: give it `#[projection(name = \"...\")]` with lowercase ASCII letters, digits and `_`, starting with a letter"
                    ),
                );
            }
            name
        }
    };
    let version = match &options.version {
        Some(lit) => match lit.base10_parse::<u32>() {
            Ok(v) if (1..=i32::MAX as u32).contains(&v) => v,
            _ => {
                cx.error_spanned_by(
                    lit,
                    "a projection's version is a number from 1 to 2147483647",
                );
                1
            }
        },
        None => 1,
    };
    Some(Model {
        ident,
        name,
        version,
        of,
        ignore,
        handlers,
        kind: kind?,
        on_error,
        shards,
        tries,
        setup: hooks.setup.map(|(ident, _)| ident),
        reset: hooks.reset.map(|(ident, _)| ident),
    })
}

/// `#[handle]` or `#[handle(key = expr)]`.
fn handle_options(cx: &mut Ctxt, attr: &Attribute) -> Option<Expr> {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return None;
    }
    let mut key = None;
    let parsed = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident(KEY) {
            let value: Expr =
                options::value(&meta, "an expression over the event: `key = e.customer_id`")?;
            options::set(cx, "handle", &meta, &mut key, value);
        } else {
            options::unknown(cx, "handle", &meta, HANDLE_OPTIONS)?;
        }
        Ok(())
    });
    if let Err(e) = parsed {
        cx.push(e);
    }
    key
}

fn parse_handler(cx: &mut Ctxt, sig: &Signature, key: Option<Expr>) -> Option<Handler> {
    if sig.asyncness.is_some() {
        return parse_table_handler(cx, sig, key);
    }
    let mut ok = true;
    let mut wrong = |cx: &mut Ctxt, tokens: &dyn quote::ToTokens| {
        cx.error_spanned_by(tokens, SHAPE);
        ok = false;
    };
    match self_param(sig) {
        SelfParam::Mut(_) => {}
        SelfParam::Shared(r) | SelfParam::Other(r) => wrong(cx, r),
        SelfParam::Missing => wrong(cx, &sig.ident),
    }
    if !sig.generics.params.is_empty() {
        wrong(cx, &sig.generics);
    }
    let args = arguments(sig);
    let (event_arg, meta_arg) = match args.as_slice() {
        [event] => (Some(*event), None),
        [event, meta] => (Some(*event), Some(*meta)),
        [] => {
            wrong(cx, &sig.ident);
            (None, None)
        }
        [_, _, rest @ ..] => {
            wrong(cx, &quote::quote!(#(#rest),*));
            (None, None)
        }
    };
    let event = event_arg.and_then(|arg| match arg_type(&arg.ty) {
        ArgType::Ref(path) => Some(path.clone()),
        _ => {
            wrong(cx, &arg.ty);
            None
        }
    });
    if let Some(meta) = meta_arg {
        ok &= metadata_argument(
            cx,
            meta,
            "the second argument of a `#[handle]` method is the event's metadata: `meta: &EventMeta`",
        );
    }
    let pat = event_arg.map(|arg| (*arg.pat).clone());
    if !ok {
        return None;
    }
    Some(Handler {
        method: sig.ident.clone(),
        event: event?,
        pat: pat?,
        key,
        meta: meta_arg.is_some(),
        sig: sig.clone(),
        database: None,
    })
}

/// An `async fn name(tx: &mut Transaction<'_, Db>, e: &Event[, meta: &EventMeta])`.
fn parse_table_handler(cx: &mut Ctxt, sig: &Signature, key: Option<Expr>) -> Option<Handler> {
    let mut ok = true;
    if let Some(key) = &key {
        cx.error_spanned_by(
            key,
            "`key` names a document, and a SQL projection has none: its handlers write their own tables",
        );
        ok = false;
    }
    if let Some(receiver) = sig.receiver() {
        cx.error_spanned_by(receiver, TABLE_SHAPE);
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, TABLE_SHAPE);
        ok = false;
    }
    let args = arguments(sig);
    let (tx, event_arg, meta_arg) = match args.as_slice() {
        [tx, event] => (*tx, *event, None),
        [tx, event, meta] => (*tx, *event, Some(*meta)),
        _ => {
            cx.push(syn::Error::new(sig.paren_token.span.join(), TABLE_SHAPE));
            return None;
        }
    };
    let database = transaction_database(&tx.ty);
    if database.is_none() {
        cx.error_spanned_by(&tx.ty, TABLE_SHAPE);
        ok = false;
    }
    let event = match arg_type(&event_arg.ty) {
        ArgType::Ref(path) => Some(path.clone()),
        _ => {
            cx.error_spanned_by(&event_arg.ty, TABLE_SHAPE);
            ok = false;
            None
        }
    };
    if let Some(meta) = meta_arg {
        ok &= metadata_argument(
            cx,
            meta,
            "the third argument of an `async` handler is the event's metadata: `meta: &EventMeta`",
        );
    }
    if !ok {
        return None;
    }
    Some(Handler {
        method: sig.ident.clone(),
        event: event?,
        pat: (*event_arg.pat).clone(),
        key: None,
        meta: meta_arg.is_some(),
        sig: sig.clone(),
        database,
    })
}

/// Whether `arg` takes `&EventMeta`; else the error `message` at its type.
fn metadata_argument(cx: &mut Ctxt, arg: &syn::PatType, message: &str) -> bool {
    let is_meta = matches!(arg_type(&arg.ty), ArgType::Ref(path)
        if path.path.segments.last().is_some_and(|s| s.ident == "EventMeta"));
    if !is_meta {
        cx.error_spanned_by(&arg.ty, message);
    }
    is_meta
}

/// `Db` of `&mut Transaction<'_, Db>` (any path to `Transaction`).
fn transaction_database(ty: &Type) -> Option<Type> {
    let Type::Reference(reference) = ty else {
        return None;
    };
    reference.mutability?;
    let Type::Path(TypePath { qself: None, path }) = &*reference.elem else {
        return None;
    };
    let last = path.segments.last().filter(|s| s.ident == "Transaction")?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(database) => Some(database.clone()),
        _ => None,
    })
}

/// `#[setup]` and `#[reset]`, each at most once.
#[derive(Default)]
struct Hooks {
    setup: Option<(syn::Ident, Option<Type>)>,
    reset: Option<(syn::Ident, Option<Type>)>,
}

impl Hooks {
    fn take(&mut self, cx: &mut Ctxt, hook: Mark, sig: &Signature) {
        let args = arguments(sig);
        let database = match (sig.asyncness, sig.receiver(), args.as_slice()) {
            (Some(_), None, [tx]) => transaction_database(&tx.ty),
            _ => None,
        };
        if database.is_none() {
            cx.error_spanned_by(&sig.ident, HOOK_SHAPE);
        }
        let slot = match hook {
            Mark::Setup => &mut self.setup,
            _ => &mut self.reset,
        };
        if slot.is_some() {
            cx.error_spanned_by(
                &sig.ident,
                format!("a second `#[{}]`: a projection has one", hook.name()),
            );
            return;
        }
        *slot = Some((sig.ident.clone(), database));
    }
}

/// Documents, when every handler is a plain method; tables, when every one is `async`
/// and they (and the hooks) name one database.
fn kind(cx: &mut Ctxt, handlers: &[Handler], hooks: &Hooks) -> Option<Kind> {
    let tables: Vec<&Handler> = handlers.iter().filter(|h| h.database.is_some()).collect();
    let hooked = hooks
        .setup
        .iter()
        .chain(hooks.reset.iter())
        .map(|(ident, database)| (ident, database));
    if tables.is_empty() {
        for (ident, _) in hooked {
            cx.error_spanned_by(
                ident,
                "`#[setup]` and `#[reset]` belong to SQL projections, whose handlers are `async` and take the transaction",
            );
        }
        return Some(Kind::Documents);
    }
    if let Some(plain) = handlers.iter().find(|h| h.database.is_none()) {
        cx.error_spanned_by(
            &plain.sig.ident,
            "a projection's handlers are all `async` (a SQL projection) or none is (a document projection)",
        );
        return None;
    }
    let database = tables[0].database.clone()?;
    let same = |other: &Type| type_key(other) == type_key(&database);
    let mut ok = true;
    for handler in &tables[1..] {
        if let Some(other) = handler.database.as_ref().filter(|d| !same(d)) {
            cx.error_spanned_by(
                other,
                "every handler of a SQL projection takes a transaction on the same database",
            );
            ok = false;
        }
    }
    for (_, other) in hooked {
        if let Some(other) = other.as_ref().filter(|d| !same(d)) {
            cx.error_spanned_by(
                other,
                "every handler of a SQL projection takes a transaction on the same database",
            );
            ok = false;
        }
    }
    ok.then(|| Kind::Tables {
        database: Box::new(database),
    })
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn projection_names_are_plain_identifiers() {
        assert!(valid_name("customer_stats") && valid_name("v2_totals"));
        for bad in [
            "",
            "Customer",
            "2x",
            "a-b",
            "a b",
            "_x",
            "x;drop",
            &"a".repeat(64),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
