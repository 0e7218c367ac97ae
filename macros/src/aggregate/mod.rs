//! `#[aggregate]`: parse the impl block into a model, validate it, emit the event enum,
//! the `Aggregate` impl and one `Handle` impl per command.

mod check;
mod emit;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ImplItem, ItemImpl, LitStr, PatType, PathArguments,
    Receiver, ReturnType, Signature, Type, TypePath,
};

use crate::ctxt::Ctxt;
use crate::options;
use crate::snapshot;

const CATEGORY: &str = "category";
const EVENT_ENUM: &str = "event_enum";
const SNAPSHOT_EVERY: &str = "snapshot_every";
const SNAPSHOT_VERSION: &str = "snapshot_version";
const OPTIONS: &[&str] = &[CATEGORY, EVENT_ENUM, SNAPSHOT_EVERY, SNAPSHOT_VERSION];

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
    let model = parse(&mut cx, args, &mut item);
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

fn parse(cx: &mut Ctxt, args: TokenStream, item: &mut ItemImpl) -> Option<Model> {
    let mut category: Option<LitStr> = None;
    let mut event_enum: Option<Ident> = None;
    let mut snapshot_every: Option<syn::LitInt> = None;
    let mut snapshot_version: Option<syn::LitInt> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(CATEGORY) {
            let value = options::value(&meta, "a string: `category = \"account\"`")?;
            options::set(cx, "aggregate", &meta, &mut category, value);
        } else if meta.path.is_ident(EVENT_ENUM) {
            let value = options::value(&meta, "a type name: `event_enum = AccountEvent`")?;
            options::set(cx, "aggregate", &meta, &mut event_enum, value);
        } else if meta.path.is_ident(SNAPSHOT_EVERY) {
            let value = options::value(&meta, "a number of events: `snapshot_every = 500`")?;
            options::set(cx, "aggregate", &meta, &mut snapshot_every, value);
        } else if meta.path.is_ident(SNAPSHOT_VERSION) {
            let value = options::value(&meta, "a number: `snapshot_version = 1`")?;
            options::set(cx, "aggregate", &meta, &mut snapshot_version, value);
        } else {
            options::unknown(cx, "aggregate", &meta, OPTIONS)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    }

    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "`#[aggregate]` goes on an inherent `impl` block, not on a trait impl: `#[aggregate] impl Account { ... }`",
        );
    }
    let generic = !item.generics.params.is_empty();
    if generic {
        cx.error_spanned_by(
            &item.generics,
            "`#[aggregate]` does not support generic aggregates: implement it for a concrete type",
        );
    }
    let ident = match &*item.self_ty {
        Type::Path(TypePath { qself: None, path })
            if path.segments.len() == 1 && path.segments[0].arguments.is_none() =>
        {
            Some(path.segments[0].ident.clone())
        }
        other => {
            if !generic {
                cx.error_spanned_by(
                    other,
                    "`#[aggregate]` needs a plain type name: `impl Account { ... }`",
                );
            }
            None
        }
    };

    let mut applies = Vec::new();
    let mut commands = Vec::new();
    let mut apply_code = snapshot::FNV_START;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            if let Some(attrs) = impl_item_attrs(impl_item) {
                for (marker, attr) in take_markers(attrs) {
                    cx.error_spanned_by(attr, format!("`#[{}]` goes on a method", marker.name()));
                }
            }
            continue;
        };
        let markers = take_markers(&mut method.attrs);
        let mut creates = false;
        for (marker, attr) in &markers {
            match (marker, &attr.meta) {
                (_, syn::Meta::Path(_)) => {}
                (Marker::Command, syn::Meta::List(_)) => {
                    creates |= parse_command_options(cx, attr);
                }
                _ => cx.error_spanned_by(
                    &attr.meta,
                    format!(
                        "`#[{}]` takes no arguments: the method's signature says what it {}",
                        marker.name(),
                        marker.subject()
                    ),
                ),
            }
        }
        let Some((first, _)) = markers.first() else {
            continue;
        };
        if let Some((_, attr)) = markers.iter().find(|(m, _)| m != first) {
            cx.error_spanned_by(
                attr,
                "a method is either a `#[command]` or an `#[apply]`, not both",
            );
            continue;
        }
        for (marker, attr) in markers.iter().skip(1) {
            cx.error_spanned_by(attr, format!("duplicate `#[{}]`", marker.name()));
        }
        match first {
            Marker::Apply => {
                apply_code = snapshot::hash_tokens(&method.sig, apply_code);
                apply_code = snapshot::hash_tokens(&method.block, apply_code);
                applies.extend(parse_apply(cx, &method.sig));
            }
            Marker::Command => commands.extend(
                parse_command(cx, &method.sig).map(|command| Command { creates, ..command }),
            ),
        }
    }

    if generic {
        // Impls without the generics would only add "missing generics" errors.
        return None;
    }
    let ident = ident?;
    let category = match category {
        Some(value) => {
            let c = value.value();
            if c.is_empty() || c.contains('-') {
                cx.error_spanned_by(
                    &value,
                    "`category` must be non-empty and must not contain `-`, which separates the category from the id in stream ids",
                );
            }
            c
        }
        None => snake_case(&ident.to_string()),
    };
    let event_enum = event_enum.unwrap_or_else(|| format_ident!("{}Event", ident));
    let version = match &snapshot_version {
        Some(lit) => number(cx, lit, SNAPSHOT_VERSION, 0),
        None => 0,
    };
    let snapshots = match &snapshot_every {
        Some(lit) => Some(Snapshots {
            every: number(cx, lit, SNAPSHOT_EVERY, 1),
            fingerprint: snapshot::fnv1a(&version.to_le_bytes(), apply_code),
        }),
        None => {
            if let Some(lit) = &snapshot_version {
                cx.error_spanned_by(
                    lit,
                    "`snapshot_version` needs `snapshot_every = N`: it versions the snapshots that option turns on",
                );
            }
            None
        }
    };
    Some(Model {
        ident,
        category,
        event_enum,
        applies,
        commands,
        snapshots,
    })
}

/// An option's integer value, at least `min`.
fn number(cx: &mut Ctxt, lit: &syn::LitInt, name: &str, min: u64) -> u64 {
    match lit.base10_parse::<u64>() {
        Ok(n) if n >= min => n,
        _ => {
            cx.error_spanned_by(
                lit,
                format!("`{name}` takes a whole number of at least {min}"),
            );
            min
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Marker {
    Apply,
    Command,
}

impl Marker {
    fn name(self) -> &'static str {
        match self {
            Marker::Apply => "apply",
            Marker::Command => "command",
        }
    }

    /// What the method's signature names: the event it applies or the command it handles.
    fn subject(self) -> &'static str {
        match self {
            Marker::Apply => "applies",
            Marker::Command => "handles",
        }
    }

    /// `#[apply]`, `#[annals::apply]` or `#[::annals::apply]`, and the same for `command`.
    fn of(path: &syn::Path) -> Option<Marker> {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let name = match segments.as_slice() {
            [name] if path.leading_colon.is_none() => name,
            [krate, name] if krate == "annals" => name,
            _ => return None,
        };
        if path.segments.iter().any(|s| !s.arguments.is_none()) {
            return None;
        }
        match name.as_str() {
            "apply" => Some(Marker::Apply),
            "command" => Some(Marker::Command),
            _ => None,
        }
    }
}

/// The options in `#[command(...)]`: whether it holds `create`. Every other option is an
/// error, reported with its span.
fn parse_command_options(cx: &mut Ctxt, attr: &Attribute) -> bool {
    let mut creates = false;
    let parsed = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("create") {
            if creates {
                cx.error_spanned_by(&meta.path, "duplicate `create`");
            }
            creates = true;
        } else {
            cx.error_spanned_by(
                &meta.path,
                "unknown `#[command]` option: the one option is `create`, for a command that usually starts its aggregate's stream; the method's signature says what it handles",
            );
        }
        Ok(())
    });
    if let Err(error) = parsed {
        cx.push(error);
    }
    creates
}

/// Removes `#[apply]` / `#[command]` from `attrs`, returning them.
fn take_markers(attrs: &mut Vec<Attribute>) -> Vec<(Marker, Attribute)> {
    let mut found = Vec::new();
    attrs.retain(|attr| match Marker::of(attr.path()) {
        Some(marker) => {
            found.push((marker, attr.clone()));
            false
        }
        None => true,
    });
    found
}

fn impl_item_attrs(item: &mut ImplItem) -> Option<&mut Vec<Attribute>> {
    match item {
        ImplItem::Const(i) => Some(&mut i.attrs),
        ImplItem::Type(i) => Some(&mut i.attrs),
        ImplItem::Macro(i) => Some(&mut i.attrs),
        _ => None,
    }
}

/// The receiver of a method, if it has one.
fn receiver(sig: &Signature) -> Option<&Receiver> {
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => Some(r),
        _ => None,
    }
}

/// The arguments after the receiver.
fn arguments(sig: &Signature) -> Vec<&PatType> {
    sig.inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Reports a method that does not take exactly one argument besides its receiver: at the
/// parentheses when there is none, at the extra ones otherwise. Returns the one argument.
fn one_argument<'a>(
    cx: &mut Ctxt,
    sig: &'a Signature,
    none: &str,
    extra: &str,
) -> Option<&'a PatType> {
    let args = arguments(sig);
    match args.as_slice() {
        [] => {
            cx.push(syn::Error::new(sig.paren_token.span.join(), none));
            None
        }
        [arg] => Some(arg),
        [arg, rest @ ..] => {
            cx.error_spanned_by(quote!(#(#rest),*), extra);
            Some(arg)
        }
    }
}

fn parse_apply(cx: &mut Ctxt, sig: &Signature) -> Option<Apply> {
    let mut callable = true;
    let mut fail = |cx: &mut Ctxt, tokens: &dyn ToTokens, message: &str| {
        cx.error_spanned_by(tokens.to_token_stream(), message);
        callable = false;
    };
    if let Some(asyncness) = &sig.asyncness {
        fail(
            cx,
            asyncness,
            "`#[apply]` cannot be `async`: applying an event is a plain state change",
        );
    }
    if !sig.generics.params.is_empty() {
        fail(cx, &sig.generics, "`#[apply]` methods cannot be generic");
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) {
            fail(
                cx,
                ty,
                "`#[apply]` must not return a value: an event is a fact, applying it cannot fail",
            );
        }
    }
    match receiver(sig) {
        Some(r) if r.colon_token.is_none() && r.reference.is_some() && r.mutability.is_some() => {}
        Some(r) if r.colon_token.is_none() && r.reference.is_some() => fail(
            cx,
            r,
            "`#[apply]` takes `&mut self`, not `&self`: applying an event changes the state",
        ),
        Some(r) => fail(
            cx,
            r,
            "`#[apply]` takes `&mut self`: applying an event changes the state in place",
        ),
        None => fail(
            cx,
            &sig.ident,
            "`#[apply]` is a method taking `&mut self`: `fn opened(&mut self, e: &Opened)`",
        ),
    }
    let arg = one_argument(
        cx,
        sig,
        "`#[apply]` takes exactly one `&Event` argument, the event it applies: `fn opened(&mut self, e: &Opened)`",
        "`#[apply]` takes exactly one `&Event` argument: apply each event type in its own method",
    )?;
    if arguments(sig).len() > 1 {
        callable = false;
    }
    let (event, by_ref) = match &*arg.ty {
        Type::Reference(r) => match &*r.elem {
            Type::Path(event) if event.qself.is_none() => {
                if r.mutability.is_some() {
                    cx.error_spanned_by(
                        &arg.ty,
                        format!(
                            "`#[apply]` takes the event by shared reference: `&{}`",
                            type_key(event)
                        ),
                    );
                }
                (event, r.mutability.is_none())
            }
            _ => {
                cx.error_spanned_by(
                    &r.elem,
                    "`#[apply]` takes a reference to a named event type: `e: &Opened`",
                );
                return None;
            }
        },
        Type::Path(event) if event.qself.is_none() => {
            cx.error_spanned_by(
                &arg.ty,
                format!(
                    "`#[apply]` takes the event by reference: `&{}`",
                    type_key(event)
                ),
            );
            (event, false)
        }
        other => {
            cx.error_spanned_by(
                other,
                "`#[apply]` takes a reference to a named event type: `e: &Opened`",
            );
            return None;
        }
    };
    let variant = event.path.segments.last()?.ident.clone();
    Some(Apply {
        method: sig.ident.clone(),
        event: event.clone(),
        variant,
        callable: callable && by_ref,
    })
}

fn parse_command(cx: &mut Ctxt, sig: &Signature) -> Option<Command> {
    let mut callable = true;
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, "`#[command]` methods cannot be generic");
        callable = false;
    }
    match receiver(sig) {
        Some(r) if r.colon_token.is_none() && r.reference.is_some() && r.mutability.is_none() => {}
        Some(r) if r.colon_token.is_none() && r.reference.is_some() => {
            cx.error_spanned_by(
                r,
                "`#[command]` takes `&self`, not `&mut self`: a command only decides, the events it returns change the state",
            );
            callable = false;
        }
        Some(r) => {
            cx.error_spanned_by(
                r,
                "`#[command]` takes `&self`: a command reads the state and returns events",
            );
            callable = false;
        }
        None => {
            cx.error_spanned_by(
                &sig.ident,
                "`#[command]` is a method taking `&self`: `fn open(&self, cmd: Open)`",
            );
            callable = false;
        }
    }
    let arg = one_argument(
        cx,
        sig,
        "`#[command]` takes exactly one argument, the command: `fn open(&self, cmd: Open)`",
        "`#[command]` takes exactly one argument, the command: put these inputs in the command type",
    )?;
    if arguments(sig).len() > 1 {
        callable = false;
    }
    let (command, by_ref) = match &*arg.ty {
        Type::Path(p) if p.qself.is_none() => (p.clone(), false),
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.qself.is_none() => {
                if r.mutability.is_some() {
                    cx.error_spanned_by(
                        &arg.ty,
                        format!(
                            "`#[command]` takes the command by value or by shared reference: `{0}` or `&{0}`",
                            type_key(p)
                        ),
                    );
                    callable = false;
                }
                (p.clone(), true)
            }
            _ => {
                cx.error_spanned_by(&arg.ty, COMMAND_TYPE);
                return None;
            }
        },
        other => {
            cx.error_spanned_by(other, COMMAND_TYPE);
            return None;
        }
    };
    let output = match &sig.output {
        ReturnType::Default => Some(Output {
            ok: syn::parse_quote!(()),
            error: None,
        }),
        ReturnType::Type(_, ty) => split_result(cx, ty),
    };
    callable &= output.is_some();
    Some(Command {
        method: sig.ident.clone(),
        command,
        by_ref,
        is_async: sig.asyncness.is_some(),
        output,
        callable,
        creates: false,
    })
}

const COMMAND_TYPE: &str = "a `#[command]` argument is a named command type, by value or by reference: `cmd: Open` or `cmd: &Open`";

/// `Result<T, E>` into `T` and `Some(E)`; any other type `T` into `T` and `None`.
fn split_result(cx: &mut Ctxt, ty: &Type) -> Option<Output> {
    let plain = || {
        Some(Output {
            ok: ty.clone(),
            error: None,
        })
    };
    let Type::Path(TypePath { qself: None, path }) = ty else {
        return plain();
    };
    let Some(last) = path.segments.last() else {
        return plain();
    };
    if last.ident != "Result" {
        return plain();
    }
    let types: Vec<&Type> = match &last.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match types.as_slice() {
        [ok, error] => Some(Output {
            ok: (*ok).clone(),
            error: Some((*error).clone()),
        }),
        _ => {
            cx.error_spanned_by(
                ty,
                "a `#[command]` returning `Result` spells out its error type: `Result<Opened, AccountError>`",
            );
            None
        }
    }
}

/// A type as written, without spaces: `v1::Opened`.
fn type_key(ty: &TypePath) -> String {
    ty.to_token_stream().to_string().replace(' ', "")
}

/// `BankAccount` -> `bank_account`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let after_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let before_lower = i > 0
                && chars[i - 1].is_uppercase()
                && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if after_lower || before_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
