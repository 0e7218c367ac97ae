use proc_macro2::TokenStream;
use quote::quote;

use super::parse::{Mark, snake_case};
use super::*;
use crate::marker::Marker;

fn expand_str(args: TokenStream, input: TokenStream) -> String {
    expand(args, input).to_string()
}

fn errors(out: &str) -> usize {
    out.matches("compile_error").count()
}

#[test]
fn snake_cases_type_names() {
    assert_eq!(snake_case("Account"), "account");
    assert_eq!(snake_case("BankAccount"), "bank_account");
    assert_eq!(snake_case("HTTPRequest"), "http_request");
    assert_eq!(snake_case("Order2Line"), "order2_line");
}

#[test]
fn recognises_marker_attributes_by_path() {
    let marker = |path: syn::Path| Mark::of(&path);
    assert_eq!(marker(syn::parse_quote!(apply)), Some(Mark::Apply));
    assert_eq!(marker(syn::parse_quote!(command)), Some(Mark::Command));
    assert_eq!(marker(syn::parse_quote!(annals::apply)), Some(Mark::Apply));
    assert_eq!(
        marker(syn::parse_quote!(::annals::command)),
        Some(Mark::Command)
    );
    assert_eq!(marker(syn::parse_quote!(::apply)), None);
    assert_eq!(marker(syn::parse_quote!(other::apply)), None);
    assert_eq!(marker(syn::parse_quote!(applied)), None);
}

#[test]
fn reports_every_mistake_at_once() {
    let input = quote! {
        impl Account {
            #[apply] fn a(&self, e: &Opened) {}
            #[apply] fn b(&mut self, e: Closed) {}
            #[command] fn c(&mut self, cmd: Open) {}
        }
    };
    let out = expand_str(quote!(categroy = "x"), input);
    assert_eq!(errors(&out), 4, "{out}");
    assert!(out.contains("did you mean `category`"), "{out}");
}

#[test]
fn options_after_an_unknown_one_are_still_read() {
    let input = quote!(impl Account { #[apply] fn opened(&mut self, _: &Opened) {} });
    let out = expand_str(quote!(vis = pub, event_enum = Happened), input);
    assert_eq!(errors(&out), 1, "{out}");
    assert!(out.contains("pub enum Happened"), "{out}");
}

#[test]
fn strips_marker_attributes_from_the_impl() {
    let input = quote! {
        impl Account {
            #[apply] fn opened(&mut self, e: &Opened) {}
            #[annals::command] fn open(&self, cmd: &Open) -> Opened { Opened }
        }
    };
    let out = expand_str(TokenStream::new(), input);
    assert_eq!(errors(&out), 0, "{out}");
    assert!(
        !out.contains("# [apply]") && !out.contains("command ]"),
        "{out}"
    );
    assert!(out.contains("pub enum AccountEvent"), "{out}");
    assert!(
        out.contains("impl :: annals :: Handle < Open > for Account"),
        "{out}"
    );
}

#[test]
fn a_mistake_keeps_the_enum_and_a_stub_handler() {
    let input = quote! {
        impl Account {
            #[apply] fn opened(&self, e: &Opened) {}
            #[command] fn open(&mut self, cmd: &Open) -> Opened { Opened }
        }
    };
    let out = expand_str(TokenStream::new(), input);
    assert_eq!(errors(&out), 2, "{out}");
    assert!(out.contains("Opened (Opened)"), "{out}");
    assert!(out.contains("AccountEvent :: Opened (_) => { }"), "{out}");
    assert!(
        out.contains("impl :: annals :: Handle < Open > for Account"),
        "{out}"
    );
    assert!(out.contains("unreachable"), "{out}");
}

#[test]
fn duplicates_are_reported_once_and_dropped() {
    let input = quote! {
        impl Account {
            #[apply] fn opened(&mut self, e: &Opened) {}
            #[apply] fn opened_again(&mut self, e: &Opened) {}
            #[apply] fn opened_v2(&mut self, e: &v2::Opened) {}
        }
    };
    let out = expand_str(TokenStream::new(), input);
    assert_eq!(errors(&out), 2, "{out}");
    assert!(
        out.contains("already has an `#[apply]` method (`opened`)"),
        "{out}"
    );
    assert!(out.contains("would both be the variant `Opened`"), "{out}");
    assert_eq!(
        out.matches("Self :: opened_again").count() + out.matches("Self :: opened_v2").count(),
        0,
        "{out}"
    );
}

#[test]
fn apply_argument_shapes_have_their_own_messages() {
    let cases = [
        (
            quote!(
                fn a(&mut self) {}
            ),
            "takes exactly one `&Event` argument, the event it applies",
        ),
        (
            quote!(
                fn a(&mut self, e: &Opened, f: &Opened) {}
            ),
            "apply each event type in its own method",
        ),
        (
            quote!(
                fn a(&mut self, e: Opened) {}
            ),
            "takes the event by reference: `&Opened`",
        ),
        (
            quote!(
                fn a(&mut self, e: &mut Opened) {}
            ),
            "by shared reference: `&Opened`",
        ),
        (
            quote!(
                fn a(&self, e: &Opened) {}
            ),
            "takes `&mut self`, not `&self`",
        ),
        (
            quote!(
                fn a(e: &Opened) {}
            ),
            "is a method taking `&mut self`",
        ),
    ];
    for (method, message) in cases {
        let out = expand_str(
            TokenStream::new(),
            quote!(impl Account { #[apply] #method }),
        );
        assert_eq!(errors(&out), 1, "{out}");
        assert!(out.contains(message), "{message}: {out}");
    }
}

#[test]
fn not_an_impl_points_at_the_item() {
    let out = expand_str(
        TokenStream::new(),
        quote!(
            struct Account;
        ),
    );
    assert_eq!(errors(&out), 1, "{out}");
    assert!(out.contains("struct Account"), "{out}");
}

/// The aggregate's part of the snapshot fingerprint, as emitted.
fn apply_fingerprint(args: TokenStream, input: TokenStream) -> Option<String> {
    let out = expand_str(args, input);
    let rest = out.split("STATE_FINGERPRINT ,").nth(1)?;
    rest.split_whitespace().next().map(str::to_owned)
}

#[test]
fn snapshot_fingerprint_follows_apply_code_and_snapshot_version() {
    let impl_with = |apply_body: TokenStream, command_body: TokenStream| {
        quote! {
            impl Counter {
                #[command]
                fn add(&self, cmd: &Add) -> Added { #command_body }
                #[apply]
                fn added(&mut self, e: &Added) { #apply_body }
            }
        }
    };
    let args = quote!(snapshot_every = 10);
    let base = apply_fingerprint(
        args.clone(),
        impl_with(quote!(self.n += e.n;), quote!(Added { n: cmd.0 })),
    );
    assert!(base.is_some());
    // Another apply body: another fingerprint.
    let changed = apply_fingerprint(
        args.clone(),
        impl_with(quote!(self.n += 2 * e.n;), quote!(Added { n: cmd.0 })),
    );
    assert_ne!(base, changed);
    // Another command body: same fingerprint (commands do not shape the state).
    let command = apply_fingerprint(
        args.clone(),
        impl_with(quote!(self.n += e.n;), quote!(Added { n: cmd.0 + 0 })),
    );
    assert_eq!(base, command);
    // Another `snapshot_version`: another fingerprint.
    let bumped = apply_fingerprint(
        quote!(snapshot_every = 10, snapshot_version = 1),
        impl_with(quote!(self.n += e.n;), quote!(Added { n: cmd.0 })),
    );
    assert_ne!(base, bumped);
    // No `snapshot_every`: no snapshot code at all.
    let none = apply_fingerprint(
        quote!(),
        impl_with(quote!(self.n += e.n;), quote!(Added { n: cmd.0 })),
    );
    assert_eq!(none, None);
}
