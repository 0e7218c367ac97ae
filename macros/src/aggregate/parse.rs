//! Parsing an `#[aggregate]` impl block into its model: the options, then each marked
//! method's signature. Every mistake is recorded with its span; a method whose shape is
//! wrong stays in the model as far as it is understood, so nothing cascades.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident};
use syn::{Attribute, Ident, ImplItem, ItemImpl, LitInt, LitStr, Signature, Type, TypePath};

use super::{Apply, Command, Model, Output, Snapshots};
use crate::ctxt::Ctxt;
use crate::marker::{self, Marker};
use crate::method::{
    ArgType, Returns, SelfParam, arg_type, arguments, one_argument, returns, self_param, type_key,
};
use crate::{options, snapshot};

const CATEGORY: &str = "category";
const EVENT_ENUM: &str = "event_enum";
const SNAPSHOT_EVERY: &str = "snapshot_every";
const SNAPSHOT_VERSION: &str = "snapshot_version";
const OPTIONS: &[&str] = &[CATEGORY, EVENT_ENUM, SNAPSHOT_EVERY, SNAPSHOT_VERSION];

const CREATE: &str = "create";
const COMMAND_OPTIONS: &[&str] = &[CREATE];

/// The markers of an `#[aggregate]` block.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Mark {
    Apply,
    Command,
}

impl Marker for Mark {
    const ALL: &'static [(&'static str, Self)] =
        &[("apply", Mark::Apply), ("command", Mark::Command)];
}

impl Mark {
    /// What the method's signature names: the event it applies or the command it handles.
    fn subject(self) -> &'static str {
        match self {
            Mark::Apply => "applies",
            Mark::Command => "handles",
        }
    }
}

/// The `#[aggregate(...)]` options as written.
#[derive(Default)]
struct Options {
    category: Option<LitStr>,
    event_enum: Option<Ident>,
    snapshot_every: Option<LitInt>,
    snapshot_version: Option<LitInt>,
}

fn parse_options(cx: &mut Ctxt, args: TokenStream) -> Options {
    let mut o = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(CATEGORY) {
            let value = options::value(&meta, "a string: `category = \"account\"`")?;
            options::set(cx, "aggregate", &meta, &mut o.category, value);
        } else if meta.path.is_ident(EVENT_ENUM) {
            let value = options::value(&meta, "a type name: `event_enum = AccountEvent`")?;
            options::set(cx, "aggregate", &meta, &mut o.event_enum, value);
        } else if meta.path.is_ident(SNAPSHOT_EVERY) {
            let value = options::value(&meta, "a number of events: `snapshot_every = 500`")?;
            options::set(cx, "aggregate", &meta, &mut o.snapshot_every, value);
        } else if meta.path.is_ident(SNAPSHOT_VERSION) {
            let value = options::value(&meta, "a number: `snapshot_version = 1`")?;
            options::set(cx, "aggregate", &meta, &mut o.snapshot_version, value);
        } else {
            options::unknown(cx, "aggregate", &meta, OPTIONS)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    }
    o
}

pub(super) fn parse(cx: &mut Ctxt, args: TokenStream, item: &mut ItemImpl) -> Option<Model> {
    let options = parse_options(cx, args);
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
    let mut apply_markers = 0;
    let mut apply_code = snapshot::FNV_START;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            marker::misplaced::<Mark>(cx, impl_item);
            continue;
        };
        let markers = marker::take::<Mark>(&mut method.attrs);
        apply_markers += markers.iter().filter(|(m, _)| *m == Mark::Apply).count();
        let creates = marker_options(cx, &markers);
        match marker::single(cx, &markers) {
            Some(Mark::Apply) => {
                apply_code = snapshot::hash_tokens(&method.sig, apply_code);
                apply_code = snapshot::hash_tokens(&method.block, apply_code);
                applies.extend(parse_apply(cx, &method.sig));
            }
            Some(Mark::Command) => commands.extend(
                parse_command(cx, &method.sig).map(|command| Command { creates, ..command }),
            ),
            None => {}
        }
    }

    if generic {
        // Impls without the generics would only add "missing generics" errors.
        return None;
    }
    let ident = ident?;
    // A trait impl is already reported: it is not the block to add methods to.
    if apply_markers == 0 && item.trait_.is_none() {
        cx.error_spanned_by(
            &item.self_ty,
            format!(
                "`#[aggregate]` on `{ident}` has no `#[apply]` method, so its state can never change: \
                 add one per event type it records, such as `#[apply] fn opened(&mut self, e: &Opened)`"
            ),
        );
    }
    let category = match &options.category {
        Some(value) => {
            let c = value.value();
            if c.is_empty() || c.contains('-') {
                cx.error_spanned_by(
                    value,
                    "`category` must be non-empty and must not contain `-`, which separates the category from the id in stream ids",
                );
            }
            c
        }
        None => snake_case(&ident.to_string()),
    };
    let event_enum = options
        .event_enum
        .unwrap_or_else(|| format_ident!("{}Event", ident));
    let version = match &options.snapshot_version {
        Some(lit) => number(cx, lit, SNAPSHOT_VERSION, 0),
        None => 0,
    };
    let snapshots = match &options.snapshot_every {
        Some(lit) => Some(Snapshots {
            every: number(cx, lit, SNAPSHOT_EVERY, 1),
            fingerprint: snapshot::fnv1a(&version.to_le_bytes(), apply_code),
        }),
        None => {
            if let Some(lit) = &options.snapshot_version {
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
fn number(cx: &mut Ctxt, lit: &LitInt, name: &str, min: u64) -> u64 {
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

/// The options of a method's markers: `#[command(create)]` is the only one; `#[apply]`
/// takes none. Returns whether `create` was given.
fn marker_options(cx: &mut Ctxt, markers: &[(Mark, Attribute)]) -> bool {
    let mut create: Option<syn::Path> = None;
    for (mark, attr) in markers {
        match (mark, &attr.meta) {
            (_, syn::Meta::Path(_)) => {}
            (Mark::Command, syn::Meta::List(_)) => {
                let parsed = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident(CREATE) {
                        options::set(cx, "command", &meta, &mut create, meta.path.clone());
                        Ok(())
                    } else {
                        options::unknown(cx, "command", &meta, COMMAND_OPTIONS)
                    }
                });
                if let Err(error) = parsed {
                    cx.push(error);
                }
            }
            _ => cx.error_spanned_by(
                &attr.meta,
                format!(
                    "`#[{}]` takes no arguments: the method's signature says what it {}",
                    mark.name(),
                    mark.subject()
                ),
            ),
        }
    }
    create.is_some()
}

/// Reports a mistake that leaves the method uncallable by the generated code.
fn fail(cx: &mut Ctxt, callable: &mut bool, tokens: &dyn ToTokens, message: &str) {
    cx.error_spanned_by(tokens.to_token_stream(), message);
    *callable = false;
}

fn parse_apply(cx: &mut Ctxt, sig: &Signature) -> Option<Apply> {
    let mut callable = true;
    if let Some(asyncness) = &sig.asyncness {
        fail(
            cx,
            &mut callable,
            asyncness,
            "`#[apply]` cannot be `async`: applying an event is a plain state change",
        );
    }
    if !sig.generics.params.is_empty() {
        fail(
            cx,
            &mut callable,
            &sig.generics,
            "`#[apply]` methods cannot be generic",
        );
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        if !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) {
            fail(
                cx,
                &mut callable,
                ty,
                "`#[apply]` must not return a value: an event is a fact, applying it cannot fail",
            );
        }
    }
    match self_param(sig) {
        SelfParam::Mut(_) => {}
        SelfParam::Shared(r) => fail(
            cx,
            &mut callable,
            r,
            "`#[apply]` takes `&mut self`, not `&self`: applying an event changes the state",
        ),
        SelfParam::Other(r) => fail(
            cx,
            &mut callable,
            r,
            "`#[apply]` takes `&mut self`: applying an event changes the state in place",
        ),
        SelfParam::Missing => fail(
            cx,
            &mut callable,
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
    callable &= arguments(sig).len() <= 1;
    let event = match arg_type(&arg.ty) {
        ArgType::Ref(event) => event,
        ArgType::RefMut(event) => {
            let message = format!(
                "`#[apply]` takes the event by shared reference: `&{}`",
                type_key(event)
            );
            fail(cx, &mut callable, &arg.ty, &message);
            event
        }
        ArgType::Owned(event) => {
            let message = format!(
                "`#[apply]` takes the event by reference: `&{}`",
                type_key(event)
            );
            fail(cx, &mut callable, &arg.ty, &message);
            event
        }
        ArgType::Other(other) => {
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
        callable,
    })
}

const COMMAND_TYPE: &str = "a `#[command]` argument is a named command type, by value or by reference: `cmd: Open` or `cmd: &Open`";

fn parse_command(cx: &mut Ctxt, sig: &Signature) -> Option<Command> {
    let mut callable = true;
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, "`#[command]` methods cannot be generic");
        callable = false;
    }
    let wrong_self = match self_param(sig) {
        SelfParam::Shared(_) => None,
        SelfParam::Mut(r) => Some((
            r.to_token_stream(),
            "`#[command]` takes `&self`, not `&mut self`: a command only decides, the events it returns change the state",
        )),
        SelfParam::Other(r) => Some((
            r.to_token_stream(),
            "`#[command]` takes `&self`: a command reads the state and returns events",
        )),
        SelfParam::Missing => Some((
            sig.ident.to_token_stream(),
            "`#[command]` is a method taking `&self`: `fn open(&self, cmd: Open)`",
        )),
    };
    if let Some((tokens, message)) = wrong_self {
        cx.error_spanned_by(tokens, message);
        callable = false;
    }
    let arg = one_argument(
        cx,
        sig,
        "`#[command]` takes exactly one argument, the command: `fn open(&self, cmd: Open)`",
        "`#[command]` takes exactly one argument, the command: put these inputs in the command type",
    )?;
    callable &= arguments(sig).len() <= 1;
    let (command, by_ref) = match arg_type(&arg.ty) {
        ArgType::Owned(command) => (command.clone(), false),
        ArgType::Ref(command) => (command.clone(), true),
        ArgType::RefMut(command) => {
            cx.error_spanned_by(
                &arg.ty,
                format!(
                    "`#[command]` takes the command by value or by shared reference: `{0}` or `&{0}`",
                    type_key(command)
                ),
            );
            callable = false;
            (command.clone(), true)
        }
        ArgType::Other(_) => {
            cx.error_spanned_by(&arg.ty, COMMAND_TYPE);
            return None;
        }
    };
    let output = match returns(sig) {
        Returns::Unit => Some(Output {
            ok: syn::parse_quote!(()),
            error: None,
        }),
        Returns::Plain(ok) => Some(Output {
            ok: ok.clone(),
            error: None,
        }),
        Returns::Result(ok, error) => Some(Output {
            ok: ok.clone(),
            error: Some(error.clone()),
        }),
        Returns::ResultWithoutError(ty) => {
            cx.error_spanned_by(
                ty,
                "a `#[command]` returning `Result` spells out its error type: `Result<Opened, AccountError>`",
            );
            None
        }
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

/// `BankAccount` -> `bank_account`.
pub(crate) fn snake_case(name: &str) -> String {
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
