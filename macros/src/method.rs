//! The signatures of a DSL's marked methods: receivers, arguments, argument types and
//! return types, read the same way by every DSL.

use quote::{ToTokens, quote};
use syn::{FnArg, GenericArgument, PatType, PathArguments, Receiver, Signature, Type, TypePath};

use crate::ctxt::Ctxt;

/// How a method takes `self`.
pub enum SelfParam<'a> {
    /// `&self`.
    Shared(&'a Receiver),
    /// `&mut self`.
    Mut(&'a Receiver),
    /// `self`, `mut self` or `self: Type`.
    Other(&'a Receiver),
    /// An associated function.
    Missing,
}

/// How `sig` takes `self`.
pub fn self_param(sig: &Signature) -> SelfParam<'_> {
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.colon_token.is_none() && r.reference.is_some() => {
            if r.mutability.is_some() {
                SelfParam::Mut(r)
            } else {
                SelfParam::Shared(r)
            }
        }
        Some(FnArg::Receiver(r)) => SelfParam::Other(r),
        _ => SelfParam::Missing,
    }
}

/// The arguments after the receiver.
pub fn arguments(sig: &Signature) -> Vec<&PatType> {
    sig.inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Reports a method that does not take exactly one argument besides its receiver: at the
/// parentheses when there is none, at the extra ones otherwise. Returns the first one.
pub fn one_argument<'a>(
    cx: &mut Ctxt,
    sig: &'a Signature,
    none: &str,
    extra: &str,
) -> Option<&'a PatType> {
    match arguments(sig).as_slice() {
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

/// How an argument names its type.
pub enum ArgType<'a> {
    /// `T`, a named type.
    Owned(&'a TypePath),
    /// `&T`.
    Ref(&'a TypePath),
    /// `&mut T`.
    RefMut(&'a TypePath),
    /// Anything else (a tuple, a slice, a reference to one, `impl Trait`, ...).
    Other(&'a Type),
}

/// How `ty` names its type.
pub fn arg_type(ty: &Type) -> ArgType<'_> {
    match ty {
        Type::Path(path) if path.qself.is_none() => ArgType::Owned(path),
        Type::Reference(r) => match &*r.elem {
            Type::Path(path) if path.qself.is_none() => match r.mutability {
                Some(_) => ArgType::RefMut(path),
                None => ArgType::Ref(path),
            },
            other => ArgType::Other(other),
        },
        other => ArgType::Other(other),
    }
}

/// What a method returns: nothing, `T`, or `Result<T, E>`.
pub enum Returns<'a> {
    /// No return type.
    Unit,
    /// `T`.
    Plain(&'a Type),
    /// `Result<T, E>`.
    Result(&'a Type, &'a Type),
    /// `Result<T>` or another `Result` whose error type is not spelled out.
    ResultWithoutError(&'a Type),
}

/// What `sig` returns. A type named `Result` counts as a result whatever its path.
pub fn returns(sig: &Signature) -> Returns<'_> {
    let ty = match &sig.output {
        syn::ReturnType::Default => return Returns::Unit,
        syn::ReturnType::Type(_, ty) => &**ty,
    };
    let Type::Path(TypePath { qself: None, path }) = ty else {
        return Returns::Plain(ty);
    };
    let Some(last) = path.segments.last().filter(|last| last.ident == "Result") else {
        return Returns::Plain(ty);
    };
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
        [ok, error] => Returns::Result(ok, error),
        _ => Returns::ResultWithoutError(ty),
    }
}

/// A type as written, without spaces: `v1::Opened`.
pub fn type_key(ty: &impl ToTokens) -> String {
    ty.to_token_stream().to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returns_of(sig: Signature) -> String {
        match returns(&sig) {
            Returns::Unit => "unit".to_owned(),
            Returns::Plain(ty) => format!("plain {}", type_key(ty)),
            Returns::Result(ok, error) => format!("result {} {}", type_key(ok), type_key(error)),
            Returns::ResultWithoutError(ty) => format!("no error type {}", type_key(ty)),
        }
    }

    #[test]
    fn a_result_without_an_error_type_is_told_apart() {
        assert_eq!(
            returns_of(syn::parse_quote!(fn f(&self) -> io::Result<Opened>)),
            "no error type io::Result<Opened>"
        );
        assert_eq!(
            returns_of(syn::parse_quote!(fn f(&self) -> Result<Opened, Rejected>)),
            "result Opened Rejected"
        );
        assert_eq!(
            returns_of(syn::parse_quote!(fn f(&self) -> Option<Opened>)),
            "plain Option<Opened>"
        );
        assert_eq!(returns_of(syn::parse_quote!(fn f(&self))), "unit");
    }
}
