//! The marker attributes of a DSL's `impl` block (`#[apply]`, `#[command]`, and the
//! markers of DSLs to come): recognised by path, taken off their methods, each mistake in
//! placing them reported once.

use syn::{Attribute, ImplItem};

use crate::ctxt::Ctxt;

/// The method markers of one DSL.
pub trait Marker: Copy + PartialEq + 'static {
    /// Every marker, with its attribute name.
    const ALL: &'static [(&'static str, Self)];

    /// What a method with this marker is, for messages: "a `#[command]`".
    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(name, _)| name)
    }

    /// `#[name]`, `#[annals::name]` or `#[::annals::name]`.
    fn of(path: &syn::Path) -> Option<Self> {
        if path.segments.iter().any(|s| !s.arguments.is_none()) {
            return None;
        }
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let name = match segments.as_slice() {
            [name] if path.leading_colon.is_none() => name,
            [krate, name] if krate == "annals" => name,
            _ => return None,
        };
        Self::ALL.iter().find(|(n, _)| n == name).map(|(_, m)| *m)
    }
}

/// Removes this DSL's markers from `attrs`, returning them in order.
pub fn take<M: Marker>(attrs: &mut Vec<Attribute>) -> Vec<(M, Attribute)> {
    let mut found = Vec::new();
    attrs.retain(|attr| match M::of(attr.path()) {
        Some(marker) => {
            found.push((marker, attr.clone()));
            false
        }
        None => true,
    });
    found
}

/// Removes and reports markers on an item of the block that is not a method.
pub fn misplaced<M: Marker>(cx: &mut Ctxt, item: &mut ImplItem) {
    let attrs = match item {
        ImplItem::Const(i) => &mut i.attrs,
        ImplItem::Type(i) => &mut i.attrs,
        ImplItem::Macro(i) => &mut i.attrs,
        _ => return,
    };
    for (marker, attr) in take::<M>(attrs) {
        cx.error_spanned_by(attr, format!("`#[{}]` goes on a method", marker.name()));
    }
}

/// The one marker of a method, given all it carries: reports a repeated marker, and two
/// different ones (then none counts). `None` also for an unmarked method.
pub fn single<M: Marker>(cx: &mut Ctxt, markers: &[(M, Attribute)]) -> Option<M> {
    let (first, _) = markers.first()?;
    if let Some((other, attr)) = markers.iter().find(|(m, _)| m != first) {
        let mut names = [first.name(), other.name()];
        names.sort_unstable_by(|a, b| b.cmp(a));
        let article = |name: &str| {
            if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            }
        };
        cx.error_spanned_by(
            attr,
            format!(
                "a method is either {} `#[{}]` or {} `#[{}]`, not both",
                article(names[0]),
                names[0],
                article(names[1]),
                names[1]
            ),
        );
        return None;
    }
    for (marker, attr) in &markers[1..] {
        cx.error_spanned_by(attr, format!("duplicate `#[{}]`", marker.name()));
    }
    Some(*first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Test {
        Apply,
        Command,
    }

    impl Marker for Test {
        const ALL: &'static [(&'static str, Self)] =
            &[("apply", Test::Apply), ("command", Test::Command)];
    }

    #[test]
    fn recognises_markers_by_path() {
        let marker = |path: syn::Path| Test::of(&path);
        assert_eq!(marker(syn::parse_quote!(apply)), Some(Test::Apply));
        assert_eq!(marker(syn::parse_quote!(command)), Some(Test::Command));
        assert_eq!(marker(syn::parse_quote!(annals::apply)), Some(Test::Apply));
        assert_eq!(
            marker(syn::parse_quote!(::annals::command)),
            Some(Test::Command)
        );
        assert_eq!(marker(syn::parse_quote!(::apply)), None);
        assert_eq!(marker(syn::parse_quote!(other::apply)), None);
        assert_eq!(marker(syn::parse_quote!(applied)), None);
        assert_eq!(Test::Command.name(), "command");
    }
}
