//! Parsing of `key = value` attribute options: one place, with duplicate and unknown
//! option errors and a "did you mean".

use syn::meta::ParseNestedMeta;
use syn::parse::Parse;

use crate::ctxt::Ctxt;

/// Stores `value` into `slot`, or records a duplicate-option error.
pub fn set<T>(cx: &mut Ctxt, attr: &str, meta: &ParseNestedMeta, slot: &mut Option<T>, value: T) {
    if slot.is_some() {
        cx.error_spanned_by(
            &meta.path,
            format!(
                "duplicate `#[{attr}]` option `{}`: give it once",
                path_name(&meta.path)
            ),
        );
    } else {
        *slot = Some(value);
    }
}

/// Records an error for an option that is not one of `known` and skips its value, so the
/// options after it are still parsed and checked.
pub fn unknown(
    cx: &mut Ctxt,
    attr: &str,
    meta: &ParseNestedMeta,
    known: &[&str],
) -> syn::Result<()> {
    cx.push(meta.error(unknown_message(attr, &path_name(&meta.path), known)));
    // Skip whatever follows (`= value`, `(...)`) up to the next option.
    while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// Parses `= value`; a missing or malformed value is reported with `expected`, an example
/// of the option written correctly.
pub fn value<T: Parse>(meta: &ParseNestedMeta, expected: &str) -> syn::Result<T> {
    let message = format!("`{}` takes {expected}", path_name(&meta.path));
    let value = meta
        .value()
        .map_err(|_| syn::Error::new_spanned(&meta.path, &message))?;
    value
        .parse()
        .map_err(|e| syn::Error::new(e.span(), &message))
}

/// `a::b` as written, without spaces.
fn path_name(path: &syn::Path) -> String {
    quote::ToTokens::to_token_stream(path)
        .to_string()
        .replace(' ', "")
}

/// "unknown option" with the list of known ones and, when one is close, a "did you mean".
fn unknown_message(attr: &str, name: &str, known: &[&str]) -> String {
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = known
        .iter()
        .filter(|k| edit_distance(k, name) <= 2)
        .min_by_key(|k| edit_distance(k, name))
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!("unknown `#[{attr}]` option `{name}`: expected one of {list}{hint}")
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
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("category", "categroy"), 2);
        assert_eq!(edit_distance("version", "version"), 0);
        assert_eq!(edit_distance("name", "nam"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn unknown_option_suggests_a_close_name() {
        let message = unknown_message("event", "nmae", &["name", "version"]);
        assert_eq!(
            message,
            "unknown `#[event]` option `nmae`: expected one of `name`, `version`; did you mean `name`?"
        );
    }

    #[test]
    fn unknown_option_without_a_close_name_lists_the_options() {
        let message = unknown_message("aggregate", "vis", &["category", "event_enum"]);
        assert_eq!(
            message,
            "unknown `#[aggregate]` option `vis`: expected one of `category`, `event_enum`"
        );
    }
}
