//! Rules across the methods of one `#[aggregate]`. Each reports its violations and drops
//! the offending method from the model, so what is emitted stays valid.

use super::Model;
use crate::check::unique;
use crate::ctxt::Ctxt;
use crate::method::type_key;

pub(super) fn validate(cx: &mut Ctxt, model: &mut Model) {
    check_event_enum_name(cx, model);
    // Each event type has one `#[apply]` method: with two, which should run is ambiguous.
    unique(
        cx,
        &mut model.applies,
        |a| type_key(&a.event),
        |cx, first, apply| {
            cx.error_spanned_by(
            &apply.event,
            format!(
                "`{}` already has an `#[apply]` method (`{}`): each event type is applied by exactly one method",
                type_key(&apply.event),
                first.method
            ),
        )
        },
    );
    // Event types become enum variants named after their last path segment.
    let event_enum = model.event_enum.clone();
    unique(
        cx,
        &mut model.applies,
        |a| a.variant.clone(),
        |cx, first, apply| {
            cx.error_spanned_by(
            &apply.event,
            format!(
                "`{}` and `{}` would both be the variant `{}` of `{}`: rename one of the types, \
                 or import one under another name (`use {} as ...;`)",
                type_key(&first.event),
                type_key(&apply.event),
                apply.variant,
                event_enum,
                type_key(&apply.event),
            ),
        )
        },
    );
    // Each command type has one `#[command]` method: with two, the handler is ambiguous.
    unique(
        cx,
        &mut model.commands,
        |c| type_key(&c.command),
        |cx, first, command| {
            cx.error_spanned_by(
            &command.command,
            format!(
                "`{}` is already handled by `#[command]` `{}`: each command type has exactly one handler",
                type_key(&command.command),
                first.method
            ),
        )
        },
    );
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
