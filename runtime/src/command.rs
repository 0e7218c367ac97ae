//! Commands: the context a command runs in, which flows into every event it records.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::event::{Metadata, RecordedEvent};

/// Who and what a command comes from: flows into every event it records.
///
/// ```
/// use annals::CommandContext;
///
/// let ctx = CommandContext::new().with_actor("alice").with_header("ip", "10.0.0.1");
/// assert_eq!(ctx.correlation_id(), ctx.causation_id()); // a new conversation
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandContext {
    metadata: Metadata,
}

impl CommandContext {
    /// A command that starts a new conversation (fresh correlation and causation id).
    pub fn new() -> Self {
        Self {
            metadata: Metadata::root(Uuid::now_v7()),
        }
    }

    /// A command caused by a recorded event: same conversation, caused by that event.
    pub fn caused_by(event: &RecordedEvent) -> Self {
        Self {
            metadata: Metadata {
                correlation_id: event.metadata.correlation_id,
                causation_id: event.event_id,
                actor: event.metadata.actor.clone(),
                headers: BTreeMap::new(),
            },
        }
    }

    /// Sets the correlation id (for example from an incoming request's trace).
    #[must_use]
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.metadata.correlation_id = id;
        self
    }

    /// Sets the causation id (the id of the message that caused this command).
    #[must_use]
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.metadata.causation_id = id;
        self
    }

    /// Sets who issues the command.
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.metadata.actor = Some(actor.into());
        self
    }

    /// Adds a custom header, stored with each event.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.headers.insert(key.into(), value.into());
        self
    }

    /// The conversation id.
    pub fn correlation_id(&self) -> Uuid {
        self.metadata.correlation_id
    }

    /// The cause recorded on the command's events.
    pub fn causation_id(&self) -> Uuid {
        self.metadata.causation_id
    }

    /// The metadata every event of the command carries.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl Default for CommandContext {
    fn default() -> Self {
        Self::new()
    }
}
