//! Rules every DSL applies the same way.

use crate::ctxt::Ctxt;

/// Keeps the first of `items` for each key and drops every later one, reporting it with
/// `duplicate(cx, first, later)`: the model keeps one handler per event or command type,
/// so what is emitted stays valid and each clash is one error.
pub fn unique<T, K: PartialEq>(
    cx: &mut Ctxt,
    items: &mut Vec<T>,
    key: impl Fn(&T) -> K,
    mut duplicate: impl FnMut(&mut Ctxt, &T, &T),
) {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        match kept.iter().find(|k| key(k) == key(&item)) {
            Some(first) => duplicate(cx, first, &item),
            None => kept.push(item),
        }
    }
    *items = kept;
}
