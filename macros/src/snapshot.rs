//! `#[derive(Snapshot)]` and the stable hash that fingerprints snapshot schemas.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::DeriveInput;

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The FNV-1a offset basis, where every hash starts.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The hash of some tokens as printed (a change of spacing alone never changes it: the
/// printer normalises spacing, so only the tokens count).
pub fn hash_tokens(tokens: &impl ToTokens, hash: u64) -> u64 {
    fnv1a(tokens.to_token_stream().to_string().as_bytes(), hash)
}

pub fn expand(input: &DeriveInput) -> TokenStream {
    // Doc comments do not change what is serialised: leave them out of the fingerprint.
    let mut definition = input.clone();
    strip_docs(&mut definition);
    let fingerprint = hash_tokens(&definition, FNV_START);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::annals::Snapshot for #ident #ty_generics #where_clause {
            const STATE_FINGERPRINT: ::core::primitive::u64 = #fingerprint;
        }
    }
}

fn strip_docs(input: &mut DeriveInput) {
    let keep = |attrs: &mut Vec<syn::Attribute>| attrs.retain(|a| !a.path().is_ident("doc"));
    keep(&mut input.attrs);
    match &mut input.data {
        syn::Data::Struct(s) => s.fields.iter_mut().for_each(|f| keep(&mut f.attrs)),
        syn::Data::Enum(e) => e.variants.iter_mut().for_each(|v| {
            keep(&mut v.attrs);
            v.fields.iter_mut().for_each(|f| keep(&mut f.attrs));
        }),
        syn::Data::Union(u) => u.fields.named.iter_mut().for_each(|f| keep(&mut f.attrs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b"", FNV_START), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a", FNV_START), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar", FNV_START), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn docs_do_not_count_but_fields_do() {
        let fp = |src: &str| {
            let input: DeriveInput = syn::parse_str(src).expect("parse");
            let out = expand(&input).to_string();
            out.split("STATE_FINGERPRINT").nth(1).map(str::to_owned)
        };
        let plain = fp("struct A { x: u32 }");
        assert_eq!(plain, fp("/// The A.\nstruct A { /// x\n x: u32 }"));
        assert_ne!(plain, fp("struct A { x: u64 }"));
    }
}
