//! The code `#[projection]` generates: thin glue over `::annals::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Handler, Kind, Model, OnError};

pub(super) fn emit(model: &Model) -> TokenStream {
    let Model {
        ident,
        name,
        version,
        of,
        ignore,
        handlers,
        kind,
        setup,
        reset,
        on_error,
        shards,
        tries,
    } = model;
    let stop_on_error = *on_error == OnError::Stop;
    let dead_letters = *on_error == OnError::DeadLetter;
    let reads_metadata = handlers.iter().any(|h| h.meta);
    let upcasts_read = handlers.iter().map(|h| {
        let event = &h.event;
        quote_spanned!(event.span()=> <#event as ::annals::Event>::upcast_reads_record())
    });
    let consumes = handlers.iter().map(|h| {
        let event = &h.event;
        quote_spanned!(event.span()=> __all.extend(<#event as ::annals::Event>::chain());)
    });
    let read_model = match kind {
        Kind::Documents => documents(ident, handlers),
        Kind::Tables { database } => {
            tables(ident, database, handlers, setup.as_ref(), reset.as_ref())
        }
    };
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
            const STOP_ON_ERROR: ::core::primitive::bool = #stop_on_error;
            const DEAD_LETTERS: ::core::primitive::bool = #dead_letters;
            const SHARDS: ::core::primitive::u32 = #shards;
            const TRIES: ::core::primitive::u32 = #tries;

            fn consumes() -> ::annals::__private::Vec<(&'static ::core::primitive::str, ::core::primitive::u32)> {
                let mut __all = ::annals::__private::Vec::new();
                #(#consumes)*
                __all
            }

            fn reads_records() -> ::core::primitive::bool {
                #reads_metadata #( || #upcasts_read )*
            }
        }

        #read_model

        #(#covers)*

        const _: () = {
            #(#checks)*
        };
    }
}

/// The document projection's impl and registration.
fn documents(ident: &syn::Ident, handlers: &[Handler]) -> TokenStream {
    let routes = handlers.iter().map(route);
    quote! {
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

        ::annals::__private::inventory::submit! {
            ::annals::__private::Registration::document::<#ident>()
        }
    }
}

/// The SQL projection's impl and registration.
fn tables(
    ident: &syn::Ident,
    database: &syn::Type,
    handlers: &[Handler],
    setup: Option<&syn::Ident>,
    reset: Option<&syn::Ident>,
) -> TokenStream {
    let hook = |hook: Option<&syn::Ident>| match hook {
        Some(method) => quote! {
            ::std::boxed::Box::pin(async move { ::annals::__private::handled(Self::#method(__tx).await) })
        },
        None => quote! {
            ::std::boxed::Box::pin(async move {
                let _ = __tx;
                ::annals::__private::Result::Ok(())
            })
        },
    };
    let (setup, reset) = (hook(setup), hook(reset));
    let arms = handlers.iter().map(table_arm);
    quote! {
        impl ::annals::__private::SqlProjection for #ident {
            type Database = #database;

            fn setup<'a>(
                __tx: &'a mut ::annals::__private::Transaction<'static, Self::Database>,
            ) -> ::annals::__private::SqlFuture<'a> {
                #setup
            }

            fn reset<'a>(
                __tx: &'a mut ::annals::__private::Transaction<'static, Self::Database>,
            ) -> ::annals::__private::SqlFuture<'a> {
                #reset
            }

            fn apply<'a>(
                __tx: &'a mut ::annals::__private::Transaction<'static, Self::Database>,
                __stored: &::annals::StoredEvent<'_>,
            ) -> ::core::option::Option<::annals::__private::Result<::annals::__private::SqlFuture<'a>, ::annals::DecodeError>> {
                #(#arms)*
                let _ = __tx;
                ::core::option::Option::None
            }
        }

        ::annals::__private::inventory::submit! {
            ::annals::__private::Registration::tables::<#ident>()
        }
    }
}

/// The arm that decodes one event type for a SQL projection and runs its handler.
fn table_arm(handler: &Handler) -> TokenStream {
    let Handler {
        method,
        event,
        meta,
        sig,
        ..
    } = handler;
    let (take_meta, pass_meta) = meta_tokens(*meta);
    let output = match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let call = quote_spanned! {output=>
        ::annals::__private::handled(Self::#method(__tx, &__decoded #pass_meta).await)
    };
    let decode = decode(event);
    quote_spanned! {event.span()=>
        if let ::core::option::Option::Some(__decoded) = #decode {
            let __decoded: #event = match __decoded {
                ::annals::__private::Result::Ok(__decoded) => __decoded,
                ::annals::__private::Result::Err(__kind) => return ::core::option::Option::Some(
                    ::annals::__private::Result::Err(::annals::__private::located(__stored, __kind)),
                ),
            };
            #take_meta
            return ::core::option::Option::Some(::annals::__private::Result::Ok(
                ::std::boxed::Box::pin(async move { #call }),
            ));
        }
    }
}

/// Decoding of a stored event as `event`, through its upcast chain.
fn decode(event: &syn::TypePath) -> TokenStream {
    quote_spanned! {event.span()=>
        <#event as ::annals::Event>::decode_with(
            __stored.name, __stored.version, __stored.payload, ::annals::__private::record(__stored),
        )
    }
}

/// The metadata a handler takes: read from the record, and passed as a last argument.
fn meta_tokens(meta: bool) -> (TokenStream, TokenStream) {
    if meta {
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
        ..
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
    let (take_meta, pass_meta) = meta_tokens(*meta);
    let decode = decode(event);
    let output = match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let call = quote_spanned! {output=>
        ::annals::__private::change(Self::#method(__this, &__decoded #pass_meta))
    };
    quote_spanned! {event.span()=>
        if let ::core::option::Option::Some(__decoded) = #decode {
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
