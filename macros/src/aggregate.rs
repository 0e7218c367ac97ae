//! `#[aggregate]`: parse the impl block into a model, validate it, emit the event enum,
//! the `Aggregate` impl and one `Handle` impl per command.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, PathArguments, ReturnType, Type,
    TypePath,
};

use crate::ctxt::Ctxt;
use crate::options::{self, Opt};

const CATEGORY: &str = "category";
const EVENT_ENUM: &str = "event_enum";
const OPTIONS: &[&str] = &[CATEGORY, EVENT_ENUM];

/// The model of one `#[aggregate]` impl block.
struct Model {
    /// The aggregate type (the impl's self type).
    ident: Ident,
    category: String,
    event_enum: Ident,
    applies: Vec<Apply>,
    commands: Vec<Command>,
}

/// An `#[apply] fn name(&mut self, e: &Event)`.
struct Apply {
    method: Ident,
    event: TypePath,
    variant: Ident,
}

/// A `#[command] fn name(&self, cmd: C) -> Result<T, E>` (or `-> T`, or `&C`, or `async`).
struct Command {
    method: Ident,
    command: TypePath,
    by_ref: bool,
    is_async: bool,
    ok: Type,
    error: Option<Type>,
}

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let e = syn::Error::new(Span::call_site(), "`#[aggregate]` goes on an `impl` block: `#[aggregate] impl Account { ... }`");
            let mut out = e.to_compile_error();
            out.extend(input);
            return out;
        }
    };
    let mut cx = Ctxt::default();
    let model = parse(&mut cx, args, &mut item);
    validate(&mut cx, model.as_ref());
    // The user's impl block always comes back (without our method attributes), so a
    // mistake in one method does not hide the others behind "method not found" errors.
    let mut out = quote!(#item);
    match model {
        Some(model) if !cx.has_errors() => out.extend(emit(&model)),
        _ => out.extend(cx.to_compile_errors()),
    }
    out
}

fn parse(cx: &mut Ctxt, args: TokenStream, item: &mut ItemImpl) -> Option<Model> {
    let mut category: Option<Opt<LitStr>> = None;
    let mut event_enum: Option<Opt<Ident>> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(CATEGORY) {
            let value = options::string(&meta)?;
            options::set(cx, "aggregate", &meta, &mut category, value);
        } else if meta.path.is_ident(EVENT_ENUM) {
            let value: Ident = meta.value()?.parse()?;
            options::set(cx, "aggregate", &meta, &mut event_enum, value);
        } else {
            return Err(options::unknown("aggregate", &meta, OPTIONS));
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    }

    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(path, "`#[aggregate]` goes on an inherent `impl` block, not on a trait impl");
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(&item.generics, "`#[aggregate]` does not support generic aggregates");
    }
    let ident = match &*item.self_ty {
        Type::Path(TypePath { qself: None, path }) if path.segments.len() == 1 => {
            Some(path.segments[0].ident.clone())
        }
        other => {
            cx.error_spanned_by(other, "`#[aggregate]` needs a plain type name: `impl Account { ... }`");
            None
        }
    };

    let mut applies = Vec::new();
    let mut commands = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else { continue };
        let kinds = take_marker_attrs(cx, method);
        match kinds.as_slice() {
            [] => {}
            [Marker::Apply] => applies.extend(parse_apply(cx, method)),
            [Marker::Command] => commands.extend(parse_command(cx, method)),
            _ => cx.error_spanned_by(&method.sig.ident, "a method is either a `#[command]` or an `#[apply]`, not both"),
        }
    }

    let ident = ident?;
    let category = match category {
        Some(Opt { value, .. }) => {
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
    let event_enum = event_enum.map_or_else(|| format_ident!("{}Event", ident), |o| Ident::new(&o.value.to_string(), o.span));
    Some(Model { ident, category, event_enum, applies, commands })
}

#[derive(PartialEq)]
enum Marker {
    Apply,
    Command,
}

/// Removes `#[apply]` / `#[command]` from a method, returning which were there.
fn take_marker_attrs(cx: &mut Ctxt, method: &mut ImplItemFn) -> Vec<Marker> {
    let mut found = Vec::new();
    method.attrs.retain(|attr| {
        let kind = if attr.path().is_ident("apply") {
            Marker::Apply
        } else if attr.path().is_ident("command") {
            Marker::Command
        } else {
            return true;
        };
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            let name = if kind == Marker::Apply { "apply" } else { "command" };
            cx.error_spanned_by(&attr.meta, format!("`#[{name}]` takes no arguments"));
        }
        found.push(kind);
        false
    });
    found
}

fn parse_apply(cx: &mut Ctxt, method: &ImplItemFn) -> Option<Apply> {
    const SHAPE: &str = "`#[apply]` takes `&mut self` and exactly one `&Event` argument: `fn applied(&mut self, e: &MyEvent)`";
    let sig = &method.sig;
    if let Some(asyncness) = sig.asyncness {
        cx.error_spanned_by(asyncness, "`#[apply]` cannot be `async`: applying an event is a plain state change");
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, "`#[apply]` methods cannot be generic");
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) {
            cx.error_spanned_by(ty, "`#[apply]` must not return a value: an event is a fact, applying it cannot fail");
        }
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {}
        Some(FnArg::Receiver(r)) => {
            cx.error_spanned_by(r, SHAPE);
            return None;
        }
        _ => {
            cx.error_spanned_by(&sig.ident, SHAPE);
            return None;
        }
    }
    let args: Vec<_> = inputs.collect();
    let [FnArg::Typed(arg)] = args.as_slice() else {
        cx.error_spanned_by(if args.is_empty() { sig.ident.to_token_stream() } else { sig.inputs.to_token_stream() }, SHAPE);
        return None;
    };
    match &*arg.ty {
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::Path(event @ TypePath { qself: None, path }) => {
                let variant = path.segments.last().map(|s| s.ident.clone())?;
                Some(Apply { method: sig.ident.clone(), event: event.clone(), variant })
            }
            other => {
                cx.error_spanned_by(other, "`#[apply]` takes a reference to a named event type: `&MyEvent`");
                None
            }
        },
        other => {
            cx.error_spanned_by(other, SHAPE);
            None
        }
    }
}

fn parse_command(cx: &mut Ctxt, method: &ImplItemFn) -> Option<Command> {
    const SHAPE: &str = "`#[command]` takes `&self` and exactly one command argument: `fn deposit(&self, cmd: Deposit)`";
    let sig = &method.sig;
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, "`#[command]` methods cannot be generic");
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) if r.mutability.is_some() => {
            cx.error_spanned_by(r, "`#[command]` takes `&self`, not `&mut self`: a command decides, its events change the state");
            return None;
        }
        Some(FnArg::Receiver(r)) => {
            cx.error_spanned_by(r, SHAPE);
            return None;
        }
        _ => {
            cx.error_spanned_by(&sig.ident, SHAPE);
            return None;
        }
    }
    let args: Vec<_> = inputs.collect();
    let [FnArg::Typed(arg)] = args.as_slice() else {
        cx.error_spanned_by(if args.is_empty() { sig.ident.to_token_stream() } else { sig.inputs.to_token_stream() }, SHAPE);
        return None;
    };
    let (command, by_ref) = match &*arg.ty {
        Type::Path(p) if p.qself.is_none() => (p.clone(), false),
        Type::Reference(r) if r.mutability.is_none() && matches!(&*r.elem, Type::Path(p) if p.qself.is_none()) => {
            let Type::Path(p) = &*r.elem else { return None };
            (p.clone(), true)
        }
        other => {
            cx.error_spanned_by(other, "a command argument is a named type, by value or by reference: `cmd: Deposit` or `cmd: &Deposit`");
            return None;
        }
    };
    let (ok, error) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), None),
        ReturnType::Type(_, ty) => split_result(cx, ty)?,
    };
    Some(Command { method: sig.ident.clone(), command, by_ref, is_async: sig.asyncness.is_some(), ok, error })
}

/// `Result<T, E>` into `(T, Some(E))`; any other type `T` into `(T, None)`.
fn split_result(cx: &mut Ctxt, ty: &Type) -> Option<(Type, Option<Type>)> {
    let Type::Path(TypePath { qself: None, path }) = ty else { return Some((ty.clone(), None)) };
    let Some(last) = path.segments.last() else { return Some((ty.clone(), None)) };
    if last.ident != "Result" {
        return Some((ty.clone(), None));
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return Some((ty.clone(), None)) };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| if let GenericArgument::Type(t) = a { Some(t) } else { None })
        .collect();
    match types.as_slice() {
        [ok, err] => Some(((*ok).clone(), Some((*err).clone()))),
        _ => {
            cx.error_spanned_by(ty, "write the command's error type out: `Result<MyEvent, MyError>`");
            None
        }
    }
}

/// Cross-method rules, each checked over the whole model.
fn validate(cx: &mut Ctxt, model: Option<&Model>) {
    let Some(model) = model else { return };
    check_duplicate_applies(cx, model);
    check_variant_names(cx, model);
    check_duplicate_commands(cx, model);
}

fn type_key(ty: &TypePath) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

/// Two `#[apply]` methods for one event type: which should run would be ambiguous.
fn check_duplicate_applies(cx: &mut Ctxt, model: &Model) {
    for (i, apply) in model.applies.iter().enumerate() {
        if let Some(first) = model.applies[..i].iter().find(|a| type_key(&a.event) == type_key(&apply.event)) {
            cx.error_spanned_by(
                &apply.event,
                format!(
                    "`{}` already has an `#[apply]` method (`{}`): each event type is applied by exactly one method",
                    type_key(&apply.event),
                    first.method
                ),
            );
        }
    }
}

/// Two event types whose last path segment is the same would give two enum variants of one name.
fn check_variant_names(cx: &mut Ctxt, model: &Model) {
    for (i, apply) in model.applies.iter().enumerate() {
        let clash = model.applies[..i]
            .iter()
            .find(|a| a.variant == apply.variant && type_key(&a.event) != type_key(&apply.event));
        if let Some(first) = clash {
            cx.error_spanned_by(
                &apply.event,
                format!(
                    "`{}` and `{}` would both be the variant `{}` of `{}`: rename one of the types",
                    type_key(&first.event),
                    type_key(&apply.event),
                    apply.variant,
                    model.event_enum
                ),
            );
        }
    }
}

/// Two `#[command]` methods for one command type: the handler would be ambiguous.
fn check_duplicate_commands(cx: &mut Ctxt, model: &Model) {
    for (i, command) in model.commands.iter().enumerate() {
        if let Some(first) = model.commands[..i].iter().find(|c| type_key(&c.command) == type_key(&command.command)) {
            cx.error_spanned_by(
                &command.command,
                format!(
                    "`{}` is already handled by `#[command]` `{}`: each command type has exactly one handler",
                    type_key(&command.command),
                    first.method
                ),
            );
        }
    }
}

fn emit(model: &Model) -> TokenStream {
    let Model { ident, category, event_enum, .. } = model;
    let doc = format!("The events of [`{ident}`], generated by `#[aggregate]`: one variant per `#[apply]`.");
    let variants: Vec<_> = model.applies.iter().map(|a| &a.variant).collect();
    let events: Vec<_> = model.applies.iter().map(|a| &a.event).collect();
    let methods: Vec<_> = model.applies.iter().map(|a| &a.method).collect();
    let is_event = events.iter().map(|e| quote_spanned!(e.span()=> ::annals::__private::assert_event::<#e>();));
    let per_event = model.applies.iter().map(|a| {
        let (event, variant) = (&a.event, &a.variant);
        quote! {
            #[automatically_derived]
            impl ::core::convert::From<#event> for #event_enum {
                fn from(event: #event) -> Self { Self::#variant(event) }
            }
            #[automatically_derived]
            impl ::annals::IntoEvents<#event_enum> for #event {
                fn into_events(self, out: &mut ::annals::__private::Vec<#event_enum>) {
                    out.push(#event_enum::#variant(self))
                }
            }
        }
    });
    let decode = model.applies.iter().map(|a| {
        let (event, variant) = (&a.event, &a.variant);
        quote_spanned! {event.span()=>
            if name == <#event as ::annals::Event>::NAME && version == <#event as ::annals::Event>::VERSION {
                return ::annals::__private::decode::<#event>(payload).map(Self::#variant);
            }
        }
    });
    let encode = model.applies.iter().map(|a| {
        let (event, variant) = (&a.event, &a.variant);
        quote_spanned!(event.span()=> Self::#variant(event) => ::annals::__private::encode::<#event>(event),)
    });
    let handlers = model.commands.iter().map(|c| emit_command(model, c));
    let unique_names = emit_unique_names(model);

    quote! {
        #[doc = #doc]
        #[derive(::core::fmt::Debug, ::core::clone::Clone)]
        pub enum #event_enum {
            #( #[allow(missing_docs)] #variants(#events), )*
        }

        #[doc(hidden)]
        const _: () = {
            fn __assert_events() { #( #is_event )* }

            #( #per_event )*

            #[automatically_derived]
            impl ::annals::IntoEvents<#event_enum> for #event_enum {
                fn into_events(self, out: &mut ::annals::__private::Vec<#event_enum>) { out.push(self) }
            }

            #[automatically_derived]
            impl ::annals::EventSet for #event_enum {
                fn event_name(&self) -> &'static str {
                    match *self { #( Self::#variants(_) => <#events as ::annals::Event>::NAME, )* }
                }
                fn event_version(&self) -> u32 {
                    match *self { #( Self::#variants(_) => <#events as ::annals::Event>::VERSION, )* }
                }
                fn encode(&self) -> ::annals::__private::Result<::annals::__private::RawPayload, ::annals::serde_json::Error> {
                    match self { #( #encode )* }
                }
                fn decode(
                    name: &str,
                    version: u32,
                    payload: &::annals::serde_json::value::RawValue,
                ) -> ::annals::__private::Result<Self, ::annals::DecodeErrorKind> {
                    #( #decode )*
                    let _ = (name, version, payload);
                    ::annals::__private::Result::Err(::annals::DecodeErrorKind::UnknownEvent)
                }
            }

            #[automatically_derived]
            impl ::annals::Aggregate for #ident {
                type Event = #event_enum;
                const CATEGORY: &'static str = #category;
                fn apply(&mut self, event: &#event_enum) {
                    match event { #( #event_enum::#variants(e) => Self::#methods(self, e), )* }
                }
            }

            #( #handlers )*
            #unique_names
        };
    }
}

fn emit_command(model: &Model, c: &Command) -> TokenStream {
    let Model { ident, event_enum, .. } = model;
    let Command { method, command, ok, .. } = c;
    let arg = if c.by_ref {
        quote!(command)
    } else {
        quote_spanned!(command.span()=> ::annals::__private::clone_command::<#command>(command))
    };
    let call = if c.is_async { quote!(Self::#method(self, #arg).await) } else { quote!(Self::#method(self, #arg)) };
    let (error, collect) = match &c.error {
        Some(error) => (quote!(#error), quote_spanned!(ok.span()=> ::annals::__private::fallible::<#event_enum, #ok, #error>(#call))),
        None => (quote!(::annals::__private::Infallible), quote_spanned!(ok.span()=> ::annals::__private::infallible::<#event_enum, #ok>(#call))),
    };
    let body = if c.is_async { quote!(async move { #collect }) } else { quote!(::annals::__private::ready(#collect)) };
    quote! {
        #[automatically_derived]
        impl ::annals::Handle<#command> for #ident {
            type Error = #error;
            fn handle<'a>(
                &'a self,
                command: &'a #command,
            ) -> impl ::core::future::Future<
                Output = ::annals::__private::Result<::annals::__private::Vec<#event_enum>, Self::Error>,
            > + ::core::marker::Send + 'a {
                #body
            }
        }
    }
}

/// One constant assertion per pair of event types: their stored names must differ, or
/// decoding could not tell them apart.
fn emit_unique_names(model: &Model) -> TokenStream {
    let mut out = TokenStream::new();
    for (i, b) in model.applies.iter().enumerate() {
        for a in &model.applies[..i] {
            let (ta, tb) = (&a.event, &b.event);
            let message = format!(
                "duplicate event name: `{}` and `{}` are stored under the same name; give one of them `#[event(name = \"...\")]`",
                type_key(ta),
                type_key(tb)
            );
            out.extend(quote_spanned! {tb.span()=>
                const _: () = ::core::assert!(
                    !::annals::__private::str_eq(<#ta as ::annals::Event>::NAME, <#tb as ::annals::Event>::NAME),
                    #message
                );
            });
        }
    }
    out
}

/// `BankAccount` -> `bank_account`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let after_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let before_lower = i > 0 && chars[i - 1].is_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
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

use quote::ToTokens;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_type_names() {
        assert_eq!(snake_case("Account"), "account");
        assert_eq!(snake_case("BankAccount"), "bank_account");
        assert_eq!(snake_case("HTTPRequest"), "http_request");
        assert_eq!(snake_case("Order2Line"), "order2_line");
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let input = quote! {
            impl Account {
                #[apply] fn a(&self, e: &Opened) {}
                #[apply] fn b(&mut self, e: Opened) {}
                #[command] fn c(&mut self, cmd: Open) {}
            }
        };
        let out = expand(quote!(categroy = "x"), input).to_string();
        assert_eq!(out.matches("compile_error").count(), 4, "{out}");
        assert!(out.contains("did you mean `category`"), "{out}");
    }

    #[test]
    fn strips_marker_attributes_from_the_impl() {
        let input = quote! {
            impl Account {
                #[apply] fn opened(&mut self, e: &Opened) {}
            }
        };
        let out = expand(TokenStream::new(), input).to_string();
        assert!(!out.contains("# [apply]"), "{out}");
        assert!(out.contains("pub enum AccountEvent"), "{out}");
    }
}
