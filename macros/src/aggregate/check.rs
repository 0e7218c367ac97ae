//! Rules across the methods of one `#[aggregate]`. Each reports its violations and drops
//! the offending method from the model, so what is emitted stays valid.

use super::{Model, type_key};
use crate::ctxt::Ctxt;

pub(super) fn validate(cx: &mut Ctxt, model: &mut Model) {
    check_event_enum_name(cx, model);
    check_duplicate_applies(cx, model);
    check_variant_names(cx, model);
    check_duplicate_commands(cx, model);
}

/// The event enum needs a name of its own: it is declared beside the aggregate.
fn check_event_enum_name(cx: &mut Ctxt, model: &mut Model) {
    if model.event_enum == model.ident {
        cx.error_spanned_by(
            &model.event_enum,
            format!("`event_enum` names the generated enum, which cannot share the aggregate's name `{}`", model.ident),
        );
        model.event_enum = quote::format_ident!("{}Event", model.ident);
    }
}

/// Each event type has one `#[apply]` method: with two, which should run would be ambiguous.
fn check_duplicate_applies(cx: &mut Ctxt, model: &mut Model) {
    let mut kept: Vec<super::Apply> = Vec::new();
    for apply in model.applies.drain(..) {
        let key = type_key(&apply.event);
        match kept.iter().find(|a| type_key(&a.event) == key) {
            Some(first) => cx.error_spanned_by(
                &apply.event,
                format!(
                    "`{key}` already has an `#[apply]` method (`{}`): each event type is applied by exactly one method",
                    first.method
                ),
            ),
            None => kept.push(apply),
        }
    }
    model.applies = kept;
}

/// Event types become enum variants named after their last path segment, which must differ.
fn check_variant_names(cx: &mut Ctxt, model: &mut Model) {
    let mut kept: Vec<super::Apply> = Vec::new();
    for apply in model.applies.drain(..) {
        match kept.iter().find(|a| a.variant == apply.variant) {
            Some(first) => cx.error_spanned_by(
                &apply.event,
                format!(
                    "`{}` and `{}` would both be the variant `{}` of `{}`: rename one of the types, \
                     or import one under another name (`use {} as ...;`)",
                    type_key(&first.event),
                    type_key(&apply.event),
                    apply.variant,
                    model.event_enum,
                    type_key(&apply.event),
                ),
            ),
            None => kept.push(apply),
        }
    }
    model.applies = kept;
}

/// Each command type has one `#[command]` method: with two, the handler would be ambiguous.
fn check_duplicate_commands(cx: &mut Ctxt, model: &mut Model) {
    let mut kept: Vec<super::Command> = Vec::new();
    for command in model.commands.drain(..) {
        let key = type_key(&command.command);
        match kept.iter().find(|c| type_key(&c.command) == key) {
            Some(first) => cx.error_spanned_by(
                &command.command,
                format!(
                    "`{key}` is already handled by `#[command]` `{}`: each command type has exactly one handler",
                    first.method
                ),
            ),
            None => kept.push(command),
        }
    }
    model.commands = kept;
}
