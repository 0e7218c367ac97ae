//! `#[derive(Event)]`: parse the `#[event(...)]` options, validate, emit the `Event` impl.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, LitInt, LitStr};

use crate::ctxt::{Ctxt, first_and_last_span};
use crate::method::type_key;
use crate::options;

const NAME: &str = "name";
const VERSION: &str = "version";
const PREVIOUS: &str = "previous";
const RENAMED: &str = "renamed";
const ALLOW_GAP: &str = "allow_gap";
const OPTIONS: &[&str] = &[NAME, VERSION, PREVIOUS, RENAMED, ALLOW_GAP];

/// The highest event version (PostgreSQL keeps versions as `int4`); the runtime's
/// `MAX_EVENT_VERSION` says the same.
const MAX_VERSION: u32 = 2_147_483_647;
const VERSION_RANGE: &str = "an event `version` is a whole number from 1 to 2147483647";

/// The rules of an event name, as the runtime's `validate_event_name` states them: a
/// stored name that differs by a stray character would orphan its history.
fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("an event `name` must not be empty: it identifies the event in the store"),
        Some(_) if name.len() > 255 => Err("an event `name` is at most 255 bytes"),
        Some(first) if !(first.is_alphabetic() || first == '_') => {
            Err("an event `name` starts with a letter or `_`")
        }
        Some(_) if !chars.all(|c| c.is_alphanumeric() || "_.-:/".contains(c)) => Err(
            "an event `name` holds letters, digits and `_`, `.`, `-`, `:`, `/` only: no spaces \
             or control characters, which would store history under a name nothing reads",
        ),
        Some(_) => Ok(()),
    }
}

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
        return emit(&model, true);
    }
    let mut out = cx.to_compile_errors();
    // Still implement the trait, so uses of the type report no follow-on errors; a generic
    // type gets no impl, which would only add "missing generics" errors. The checks of its
    // serde impls wait until the definition itself is right.
    if input.generics.params.is_empty() {
        out.extend(emit(&model, false));
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
        Some(value) => {
            if let Err(reason) = check_name(&value.value()) {
                cx.error_spanned_by(&value, reason);
            }
            value.value()
        }
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
            Ok(v) if v <= MAX_VERSION => v,
            _ => {
                cx.error_spanned_by(&value, VERSION_RANGE);
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
            ty: itself_by_name(ty, &input.ident),
            renamed: renamed.is_some(),
            allow_gap: allow_gap.is_some(),
        }),
    }
}

/// `previous = Self` as the type's own name, which the cycle check then finds: `Self` means
/// nothing outside the impl the checks live beside.
fn itself_by_name(ty: syn::Type, ident: &syn::Ident) -> syn::Type {
    match &ty {
        syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self") => {
            let span = p.path.segments[0].ident.span();
            syn::Type::Path(syn::TypePath {
                qself: None,
                path: syn::Ident::new(&ident.to_string(), span).into(),
            })
        }
        _ => ty,
    }
}

fn emit(model: &EventModel, serde_checks: bool) -> TokenStream {
    let ident = &model.input.ident;
    let (name, version) = (&model.name, model.version);
    let rust_type = ident.to_string();
    let (previous, upcast, checks) = match &model.previous {
        None => (
            quote!(::annals::NoPrevious),
            quote! {
                fn upcast(
                    __previous: ::annals::NoPrevious,
                    _: ::core::option::Option<&::annals::RecordedEvent>,
                ) -> ::core::result::Result<Self, ::annals::DecodeErrorKind> {
                    match __previous {}
                }
            },
            TokenStream::new(),
        ),
        Some(p) => emit_previous(model, p),
    };
    let serializable = serde_checks.then(|| emit_serializable(ident));
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
                fn decode_payload(
                    __payload: &::core::primitive::str,
                ) -> ::core::result::Result<Self, ::annals::serde_json::Error> {
                    #[allow(unused_imports)]
                    use ::annals::__private::NotDeserializable as _;
                    <::annals::__private::DeserializeProbe<#ident>>::decode(__payload)
                }
                #upcast
            }
            #checks
            #serializable
            ::annals::__private::inventory::submit! {
                ::annals::__private::EventType::new::<#ident>(#rust_type, ::core::module_path!())
            }
        };
    }
}

/// Every version of an event is read back, so it must deserialise; the newest is also
/// stored, so it must serialise (an old version, which a newer type names as `previous`,
/// is only ever read). Constant assertions at the derive: each mistake is reported here,
/// once, in words, and nothing that uses the type reports it again.
fn emit_serializable(ident: &syn::Ident) -> TokenStream {
    let read = format!(
        "`{ident}` is an event, so it must implement `Deserialize`: add `#[derive(Deserialize)]` \
         (every version of an event is read back from the store)"
    );
    let stored = format!(
        "`{ident}` is an event, so it must implement `Serialize`: add `#[derive(Serialize)]` \
         (only an old version that a newer type names as `previous` may go without)"
    );
    quote! {
        const _: () = {
            #[allow(unused_imports)]
            use ::annals::__private::NotDeserializable as _;
            ::core::assert!(<::annals::__private::DeserializeProbe<#ident>>::DESERIALIZES, #read);
        };
        const _: () = {
            #[allow(unused_imports)]
            use ::annals::__private::{NotSerializable as _, NotSuperseded as _};
            ::core::assert!(
                <::annals::__private::SupersededProbe<#ident>>::SUPERSEDED
                    || <::annals::__private::SerializeProbe<#ident>>::SERIALIZES,
                #stored
            );
        };
    }
}

/// How many links back a chain is searched for a cycle.
const CYCLE_DEPTH: usize = 8;

/// The link to the previous version: its type, the upcaster call, and the chain's rules,
/// each a constant assertion at the `previous` type whose message names both types and
/// versions. A chain that leads back to this type is one error, "cycle", at the link that
/// points to a newer version; the other rules then stay silent.
fn emit_previous(model: &EventModel, p: &Previous) -> (TokenStream, TokenStream, TokenStream) {
    let ident = &model.input.ident;
    let (name, version) = (&model.name, model.version);
    let ty = &p.ty;
    let span = ty.span();
    // Through `Event`, so a `previous` that is not an event is reported as such, once.
    let link = quote_spanned!(span=> <#ty as ::annals::Event>);
    let upcaster = quote_spanned!(span=> <Self as ::annals::UpcastFrom<#ty>>);
    // The first links of the chain back from `previous`, each compared with this type.
    let mut back = quote!(#ty);
    let mut cycle = Vec::with_capacity(CYCLE_DEPTH);
    for depth in 0..CYCLE_DEPTH {
        cycle.push(quote_spanned!(span=> <::annals::__private::Same<#back, #ident>>::SAME));
        back = match depth {
            0 => quote_spanned!(span=> #link::Previous),
            _ => quote_spanned!(span=> ::annals::__private::Before<#back>),
        };
    }
    let upcast = quote_spanned! {span=>
        fn upcast(
            __previous: #ty,
            __record: ::core::option::Option<&::annals::RecordedEvent>,
        ) -> ::core::result::Result<Self, ::annals::DecodeErrorKind> {
            match __record {
                ::core::option::Option::Some(__record) => {
                    ::core::result::Result::Ok(#upcaster::upcast_from(__previous, __record))
                }
                ::core::option::Option::None => #upcaster::upcast_without_record(__previous)
                    .map_err(|_| ::annals::__private::record_needed::<Self>()),
            }
        }
        fn upcast_reads_record() -> ::core::primitive::bool {
            #upcaster::READS_RECORD || #link::upcast_reads_record()
        }
        const IN_CYCLE: ::core::primitive::bool = {
            #[allow(unused_imports)]
            use ::annals::__private::NotSame as _;
            #(#cycle)||*
        };
    };
    let (prev, cur) = (type_key(ty), ident.to_string());
    let in_cycle = quote_spanned!(span=> <#ident as ::annals::Event>::IN_CYCLE);
    let pv = quote_spanned!(span=> #link::VERSION);
    let text = |t: String| quote!(.text(#t));
    let prev_version = quote!(.number(#pv));
    // Each rule: the condition under which the link breaks it, and its message in pieces.
    let mut rules = vec![
        (
            quote!(#in_cycle && #pv >= #version),
            if prev == cur {
                vec![text(format!(
                    "`{cur}` names itself as its previous version, a cycle: `previous` names an \
                     older version of the event, a type of its own"
                ))]
            } else {
                vec![
                    text(format!(
                        "the `previous` links of `{cur}` form a cycle: `{cur}` (v{version}) names `{prev}` (v"
                    )),
                    prev_version.clone(),
                    text(format!(
                        ") as its previous version, and the chain of `{prev}` leads back to `{cur}`; \
                         `previous` names an older version, so remove the link to a newer or equal one"
                    )),
                ]
            },
        ),
        (
            quote!(!#in_cycle && #pv == #version),
            vec![text(format!(
                "duplicate version {version} in the chain of `{cur}`: its previous version `{prev}` \
                 is also v{version}; give every version of an event its own number, counting up from 1"
            ))],
        ),
        (
            quote!(!#in_cycle && #pv > #version),
            vec![
                text(format!("`{prev}` (v")),
                prev_version.clone(),
                text(format!(
                    ") cannot be the previous version of `{cur}` (v{version}): its version must be lower; \
                     `previous` names the older type, so swap the two types' `version` numbers if they are reversed"
                )),
            ],
        ),
    ];
    if !p.allow_gap {
        rules.push((
            quote!(!#in_cycle && #pv < #version && #version - #pv > 1),
            vec![
                text(format!(
                    "version gap in the chain of `{cur}`: `{prev}` is v"
                )),
                prev_version.clone(),
                text(format!(
                    " and `{cur}` is v{version}; declare the missing versions, or add `allow_gap` \
                     to `#[event(...)]` on `{cur}` if they never existed"
                )),
            ],
        ));
    }
    if !p.renamed {
        rules.push((
            quote!(!#in_cycle && !::annals::__private::str_eq(#link::NAME, #name)),
            vec![
                text(format!("`{prev}` (v")),
                prev_version,
                text(format!(
                    ") is stored under another name than `{cur}` (v{version}); add `renamed` to \
                     `#[event(...)]` on `{cur}` if the rename is intended"
                )),
            ],
        ));
    }
    // The assertion spans the whole type, so the error underlines all of it.
    let (start, end) = first_and_last_span(ty);
    let checks = rules.into_iter().map(|(breaks, message)| {
        let mut args = Group::new(
            Delimiter::Parenthesis,
            quote_spanned!(start=> "{}", __MESSAGE.as_str()),
        );
        args.set_span(end);
        quote_spanned! {start=>
            const _: () = {
                const __MESSAGE: ::annals::__private::Message =
                    ::annals::__private::Message::new() #(#message)*;
                if #breaks {
                    ::core::panic! #args
                }
            };
        }
    });
    // Marks the predecessor, so an aggregate that applies it instead of this newest
    // version is told so at compile time (see `__private::Superseded`).
    let marker = quote_spanned! {span=>
        #[automatically_derived]
        impl ::annals::__private::Superseded for #ty {}
    };
    let checks = quote!(#(#checks)* #marker);
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
        assert!(out.contains("UpcastFrom < OpenedV1 >"), "{out}");
        for rule in [
            "form a cycle",
            "duplicate version",
            "its version must be lower",
            "version gap",
            "another name",
        ] {
            assert!(out.contains(rule), "{rule}: {out}");
        }
    }

    #[test]
    fn renamed_and_allow_gap_drop_their_probes() {
        let out = expand_str(quote!(
            #[event(version = 3, previous = OpenedV1, renamed, allow_gap)]
            struct Opened;
        ));
        assert!(!out.contains("version gap"), "{out}");
        assert!(!out.contains("another name"), "{out}");
        assert!(out.contains("its version must be lower"), "{out}");
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
