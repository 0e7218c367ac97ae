//! The code `#[projection]` generates: thin glue over `::annals::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Handler, Model};

pub(super) fn emit(model: &Model) -> TokenStream {
    let Model {
        ident,
        name,
        version,
        of,
        ignore,
        handlers,
    } = model;
    let reads_metadata = handlers.iter().any(|h| h.meta);
    let consumes = handlers.iter().map(|h| {
        let event = &h.event;
        quote_spanned!(event.span()=> __all.extend(<#event as ::annals::Event>::chain());)
    });
    let routes = handlers.iter().map(route);
    let covers = handlers.iter().map(|h| &h.event).chain(ignore).map(|event| {
        quote_spanned!(event.span()=> impl ::annals::__private::Covers<#event> for #ident {})
    });
    let checks = of.iter().map(|aggregate| {
        quote_spanned!(aggregate.span()=> ::annals::__private::covered::<#aggregate, #ident>();)
    });
    quote! {
        impl ::annals::__private::Projection for #ident {
            const NAME: &'static ::core::primitive::str = #name;
            const VERSION: ::core::primitive::u32 = #version;
            const READS_METADATA: ::core::primitive::bool = #reads_metadata;

            fn consumes() -> ::annals::__private::Vec<(&'static ::core::primitive::str, ::core::primitive::u32)> {
                let mut __all = ::annals::__private::Vec::new();
                #(#consumes)*
                __all
            }
        }

        impl ::annals::__private::DocumentProjection for #ident {
            type Event = ::annals::__private::Apply<Self>;

            fn route(
                __stored: &::annals::StoredEvent<'_>,
            ) -> ::core::option::Option<::annals::__private::Result<::annals::__private::Routed<Self::Event>, ::annals::DecodeError>> {
                #(#routes)*
                ::core::option::Option::None
            }

            fn apply(&mut self, __event: Self::Event) -> ::annals::__private::Result<::annals::__private::Change, ::annals::__private::HandlerError> {
                __event(self)
            }
        }

        #(#covers)*

        const _: () = {
            #(#checks)*
        };

        ::annals::__private::inventory::submit! {
            ::annals::__private::Registration::document::<#ident>()
        }
    }
}

/// The arm that decodes one handled event type and binds its handler.
fn route(handler: &Handler) -> TokenStream {
    let Handler {
        method,
        event,
        pat,
        key,
        meta,
        sig,
    } = handler;
    let key = match key {
        // The key expression sees the event under the argument's own name.
        Some(expr) => quote_spanned! {expr.span()=>
            {
                #[allow(unused_variables)]
                let #pat = &__decoded;
                ::annals::__private::key(&(#expr))
            }
        },
        None => quote!(::annals::__private::stream_key(__stored)),
    };
    let (take_meta, pass_meta) = if *meta {
        (
            quote! {
                let __meta = match ::annals::__private::meta(__stored) {
                    ::annals::__private::Result::Ok(__meta) => __meta,
                    ::annals::__private::Result::Err(__error) => return ::core::option::Option::Some(::annals::__private::Result::Err(__error)),
                };
            },
            quote!(, &__meta),
        )
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    let output = match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let call = quote_spanned! {output=>
        ::annals::__private::change(Self::#method(__this, &__decoded #pass_meta))
    };
    quote_spanned! {event.span()=>
        if let ::core::option::Option::Some(__decoded) = <#event as ::annals::Event>::decode_with(
            __stored.name, __stored.version, __stored.payload, ::annals::__private::record(__stored),
        ) {
            let __decoded: #event = match __decoded {
                ::annals::__private::Result::Ok(__decoded) => __decoded,
                ::annals::__private::Result::Err(__kind) => return ::core::option::Option::Some(
                    ::annals::__private::Result::Err(::annals::__private::located(__stored, __kind)),
                ),
            };
            #take_meta
            let __key = #key;
            let __apply: ::annals::__private::Apply<Self> = ::std::boxed::Box::new(move |__this: &mut Self| #call);
            return ::core::option::Option::Some(::annals::__private::Result::Ok(::annals::__private::Routed { key: __key, event: __apply }));
        }
    }
}
