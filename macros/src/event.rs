//! `#[derive(Event)]`: parse the `#[event(...)]` options, validate, emit the `Event` impl.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, LitInt, LitStr};

use crate::ctxt::Ctxt;
use crate::options::{self, Opt};

const NAME: &str = "name";
const VERSION: &str = "version";
const OPTIONS: &[&str] = &[NAME, VERSION];

/// The model of one event type.
struct EventModel<'a> {
    input: &'a DeriveInput,
    name: String,
    version: u32,
}

pub fn expand(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let model = parse(&mut cx, input);
    if cx.has_errors() {
        // Still implement the trait, so uses of the type report no follow-on errors.
        let dummy = EventModel { input, name: input.ident.to_string(), version: 1 };
        let mut out = cx.to_compile_errors();
        out.extend(emit(&dummy));
        return out;
    }
    emit(&model)
}

fn parse<'a>(cx: &mut Ctxt, input: &'a DeriveInput) -> EventModel<'a> {
    if let Data::Union(u) = &input.data {
        cx.error_spanned_by(u.union_token, "`#[derive(Event)]` supports structs and enums, not unions");
    }
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "`#[derive(Event)]` does not support generic types: an event's stored name and version must be fixed",
        );
    }
    let mut name: Option<Opt<LitStr>> = None;
    let mut version: Option<Opt<LitInt>> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(NAME) {
                let value = options::string(&meta)?;
                options::set(cx, "event", &meta, &mut name, value);
            } else if meta.path.is_ident(VERSION) {
                let value: LitInt = meta.value()?.parse()?;
                options::set(cx, "event", &meta, &mut version, value);
            } else {
                return Err(options::unknown("event", &meta, OPTIONS));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            cx.push(e);
        }
    }
    let name = match name {
        Some(Opt { value, .. }) if value.value().trim().is_empty() => {
            cx.error_spanned_by(&value, "an event name must not be empty");
            String::new()
        }
        Some(Opt { value, .. }) => value.value(),
        None => input.ident.to_string(),
    };
    let version = match version {
        None => 1,
        Some(Opt { value, .. }) => match value.base10_parse::<u32>() {
            Ok(v) if v >= 1 => v,
            _ => {
                cx.error_spanned_by(&value, "an event version is a whole number from 1 to 4294967295");
                1
            }
        },
    };
    EventModel { input, name, version }
}

fn emit(model: &EventModel) -> TokenStream {
    let ident = &model.input.ident;
    let (name, version) = (&model.name, model.version);
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl ::annals::Event for #ident {
                const NAME: &'static str = #name;
                const VERSION: u32 = #version;
            }
        };
    }
}
