//! Parsing of `key = value` attribute options: one place, with duplicate and unknown
//! option errors and a "did you mean".

use syn::meta::ParseNestedMeta;

use crate::ctxt::Ctxt;

/// A parsed option value, remembering where it was written.
pub struct Opt<T> {
    pub value: T,
    pub span: proc_macro2::Span,
}

/// Stores `value` into `slot`, or records a duplicate-option error.
pub fn set<T>(cx: &mut Ctxt, attr: &str, meta: &ParseNestedMeta, slot: &mut Option<Opt<T>>, value: T) {
    let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
    if slot.is_some() {
        cx.error_spanned_by(&meta.path, format!("duplicate `#[{attr}]` option `{name}`"));
    } else {
        *slot = Some(Opt { value, span: meta.path.get_ident().map_or_else(proc_macro2::Span::call_site, |i| i.span()) });
    }
}

/// The error for an option that is not one of `known`.
pub fn unknown(attr: &str, meta: &ParseNestedMeta, known: &[&str]) -> syn::Error {
    let name = quote::ToTokens::to_token_stream(&meta.path).to_string().replace(' ', "");
    let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let hint = known
        .iter()
        .filter(|k| edit_distance(k, &name) <= 2)
        .min_by_key(|k| edit_distance(k, &name))
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    meta.error(format!("unknown `#[{attr}]` option `{name}`: expected one of {list}{hint}"))
}

/// Parses `= "string"`.
pub fn string(meta: &ParseNestedMeta) -> syn::Result<syn::LitStr> {
    meta.value()?.parse()
}

/// Levenshtein distance, for "did you mean" hints on short option names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("category", "categroy"), 2);
        assert_eq!(edit_distance("version", "version"), 0);
        assert_eq!(edit_distance("name", "nam"), 1);
    }
}
