//! `#[derive(Event)]`: parse the `#[event(...)]` options, validate, emit the `Event` impl.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, LitInt, LitStr};

use crate::ctxt::Ctxt;
use crate::options;

const NAME: &str = "name";
const VERSION: &str = "version";
const PREVIOUS: &str = "previous";
const RENAMED: &str = "renamed";
const ALLOW_GAP: &str = "allow_gap";
const OPTIONS: &[&str] = &[NAME, VERSION, PREVIOUS, RENAMED, ALLOW_GAP];

/// The model of one event type.
struct EventModel<'a> {
    input: &'a DeriveInput,
    name: String,
    version: u32,
    /// The type this one supersedes (`previous = OldType`), with the successor's opt-ins.
    previous: Option<Previous>,
}

struct Previous {
    ty: syn::Type,
    /// `renamed`: the predecessor is stored under another name.
    renamed: bool,
    /// `allow_gap`: versions between the two never existed.
    allow_gap: bool,
}

pub fn expand(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let model = parse(&mut cx, input);
    if !cx.has_errors() {
        return emit(&model);
    }
    let mut out = cx.to_compile_errors();
    // Still implement the trait, so uses of the type report no follow-on errors; a generic
    // type gets no impl, which would only add "missing generics" errors.
    if input.generics.params.is_empty() {
        out.extend(emit(&model));
    }
    out
}

fn parse<'a>(cx: &mut Ctxt, input: &'a DeriveInput) -> EventModel<'a> {
    if let Data::Union(u) = &input.data {
        cx.error_spanned_by(
            u.union_token,
            "`#[derive(Event)]` supports structs and enums, not unions",
        );
    }
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "`#[derive(Event)]` does not support generic types: an event's stored name and version are fixed, \
             so make one event type per instantiation",
        );
    }
    let mut name: Option<LitStr> = None;
    let mut version: Option<LitInt> = None;
    let mut previous: Option<syn::Type> = None;
    let mut renamed: Option<syn::Path> = None;
    let mut allow_gap: Option<syn::Path> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(NAME) {
                let value = options::value(&meta, "a string: `name = \"AccountOpened\"`")?;
                options::set(cx, "event", &meta, &mut name, value);
            } else if meta.path.is_ident(VERSION) {
                let value = options::value(&meta, "a whole number: `version = 2`")?;
                options::set(cx, "event", &meta, &mut version, value);
            } else if meta.path.is_ident(PREVIOUS) {
                let value = options::value(
                    &meta,
                    "the previous version's type: `previous = MoneyDepositedV1`",
                )?;
                options::set(cx, "event", &meta, &mut previous, value);
            } else if meta.path.is_ident(RENAMED) {
                options::set(cx, "event", &meta, &mut renamed, meta.path.clone());
            } else if meta.path.is_ident(ALLOW_GAP) {
                options::set(cx, "event", &meta, &mut allow_gap, meta.path.clone());
            } else {
                options::unknown(cx, "event", &meta, OPTIONS)?;
            }
            Ok(())
        });
        if let Err(e) = parsed {
            cx.push(e);
        }
    }
    let name = match name {
        Some(value) if value.value().trim().is_empty() => {
            cx.error_spanned_by(
                &value,
                "an event `name` must not be empty: it identifies the event in the store",
            );
            input.ident.to_string()
        }
        Some(value) => value.value(),
        None => input.ident.to_string(),
    };
    let version = match version {
        None => 1,
        Some(value) => match value.base10_parse::<u32>() {
            Ok(0) => {
                cx.error_spanned_by(
                    &value,
                    "event versions start at 1: the first schema is `#[event(version = 1)]`",
                );
                1
            }
            Ok(v) => v,
            Err(_) => {
                cx.error_spanned_by(
                    &value,
                    "an event `version` is a whole number from 1 to 4294967295",
                );
                1
            }
        },
    };
    if previous.is_none() {
        for (flag, name) in [(&renamed, RENAMED), (&allow_gap, ALLOW_GAP)] {
            if let Some(path) = flag {
                cx.error_spanned_by(
                    path,
                    format!("`{name}` describes the link to a previous version: add `previous = OldType`"),
                );
            }
        }
    }
    EventModel {
        input,
        name,
        version,
        previous: previous.map(|ty| Previous {
            ty,
            renamed: renamed.is_some(),
            allow_gap: allow_gap.is_some(),
        }),
    }
}

fn emit(model: &EventModel) -> TokenStream {
    let ident = &model.input.ident;
    let (name, version) = (&model.name, model.version);
    let rust_type = ident.to_string();
    let (previous, upcast, checks) = match &model.previous {
        None => (
            quote!(::annals::NoPrevious),
            quote!(match __previous {}),
            TokenStream::new(),
        ),
        Some(p) => emit_previous(ident, version, p),
    };
    quote! {
        #[doc(hidden)]
        const _: () = {
            // Kept out of "the trait is implemented for ..." lists: when a type is not an
            // event, the fix is its own derive, not another event type.
            #[automatically_derived]
            #[diagnostic::do_not_recommend]
            impl ::annals::Event for #ident {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = #version;
                type Previous = #previous;
                fn upcast(__previous: #previous) -> Self { #upcast }
            }
            #checks
            ::annals::__private::inventory::submit! {
                ::annals::__private::EventType::new::<#ident>(#rust_type, ::core::module_path!())
            }
        };
    }
}

/// The link to the previous version: its type, the upcaster call, and one spanned probe per
/// rule, each naming both types and versions when it fails.
fn emit_previous(
    ident: &syn::Ident,
    version: u32,
    p: &Previous,
) -> (TokenStream, TokenStream, TokenStream) {
    let ty = &p.ty;
    let span = ty.span();
    let pv = quote_spanned!(span=> { <#ty as ::annals::Event>::VERSION });
    // The same number as an expression, for the checks' conditions.
    let pve = quote_spanned!(span=> (<#ty as ::annals::Event>::VERSION));
    let upcast = quote_spanned! {span=>
        <Self as ::annals::__private::Upcaster<#ty, #pv, #version>>::upcast(__previous)
    };
    let probe = |check: &str, ok: TokenStream| {
        let check = syn::Ident::new(check, span);
        quote_spanned! {span=>
            ::annals::__private::#check::<::annals::__private::Check<{ #ok }>, #ty, #ident, #pv, #version>();
        }
    };
    let mut body = TokenStream::new();
    body.extend(probe("distinct_version", quote!(#pve != #version)));
    body.extend(probe("lower_version", quote!(#pve <= #version)));
    if !p.allow_gap {
        body.extend(probe(
            "no_gap",
            quote!(#pve >= #version || #version - #pve == 1),
        ));
    }
    if !p.renamed {
        body.extend(probe(
            "same_name",
            quote!(::annals::__private::str_eq(<#ty as ::annals::Event>::NAME, <#ident as ::annals::Event>::NAME)),
        ));
    }
    // Marks the predecessor, so an aggregate that applies it instead of this newest
    // version is told so at compile time (see `__private::Superseded`).
    let marker = quote_spanned! {span=>
        #[automatically_derived]
        impl ::annals::__private::Superseded for #ty {}
    };
    let checks = quote!(const _: () = { #body }; #marker);
    (quote!(#ty), upcast, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: TokenStream) -> String {
        expand(&syn::parse2(input).unwrap()).to_string()
    }

    #[test]
    fn defaults_to_the_type_name_and_version_one() {
        let out = expand_str(quote!(
            struct Opened;
        ));
        assert!(out.contains("\"Opened\""), "{out}");
        assert!(out.contains("1u32"), "{out}");
    }

    #[test]
    fn reads_name_and_version() {
        let out = expand_str(quote!(
            #[event(name = "AccountOpened", version = 3)]
            struct Opened;
        ));
        assert!(out.contains("\"AccountOpened\""), "{out}");
        assert!(out.contains("3u32"), "{out}");
    }

    #[test]
    fn reports_every_option_mistake_and_still_implements_the_trait() {
        let out = expand_str(quote!(
            #[event(nmae = "x", version = 0)]
            struct Opened;
        ));
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(out.contains("did you mean `name`"), "{out}");
        assert!(out.contains("impl :: annals :: Event for Opened"), "{out}");
    }

    #[test]
    fn previous_sets_the_chain_and_probes_every_rule() {
        let out = expand_str(quote!(
            #[event(version = 2, previous = OpenedV1)]
            struct Opened;
        ));
        assert!(out.contains("type Previous = OpenedV1"), "{out}");
        assert!(
            out.contains("Superseded for OpenedV1"),
            "the predecessor is marked: {out}"
        );
        assert!(out.contains("Upcaster < OpenedV1"), "{out}");
        for probe in ["distinct_version", "lower_version", "no_gap", "same_name"] {
            assert!(out.contains(probe), "{probe}: {out}");
        }
    }

    #[test]
    fn renamed_and_allow_gap_drop_their_probes() {
        let out = expand_str(quote!(
            #[event(version = 3, previous = OpenedV1, renamed, allow_gap)]
            struct Opened;
        ));
        assert!(!out.contains("no_gap"), "{out}");
        assert!(!out.contains("same_name"), "{out}");
        assert!(out.contains("lower_version"), "{out}");
    }

    #[test]
    fn without_previous_the_chain_ends() {
        let out = expand_str(quote!(
            struct Opened;
        ));
        assert!(
            out.contains("type Previous = :: annals :: NoPrevious"),
            "{out}"
        );
        assert!(out.contains("inventory :: submit"), "{out}");
    }

    #[test]
    fn a_generic_type_gets_no_impl() {
        let out = expand_str(quote!(
            struct Opened<T>(T);
        ));
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(!out.contains("impl"), "{out}");
    }
}
