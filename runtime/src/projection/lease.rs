//! Which runner works on a projection: a lease, so that of several runners (processes) on
//! one database, one at a time applies each projection.

use std::future::Future;
use std::pin::Pin;

/// A store's hold on a projection for one runner, while it lasts.
///
/// Stores whose projections only this process can run (memory, SQLite) grant an
/// unshared lease that never ends. PostgreSQL holds an advisory lock on a connection of
/// its own: when the process dies or the connection drops, the lock goes and another
/// runner takes the projection over.
pub struct Lease {
    held: Option<Box<dyn Held>>,
}

/// What a store keeps to hold a lease, asked whether it still holds it.
pub trait Held: Send {
    /// Whether the lease is still held (the connection holding it still answers).
    fn alive(&mut self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;

    /// Gives the lease back, for another runner to take at once.
    fn release(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl Lease {
    /// A lease no other runner can contend for: the store is this process's alone.
    pub fn unshared() -> Self {
        Self { held: None }
    }

    /// A lease kept by `held`.
    pub fn held(held: impl Held + 'static) -> Self {
        Self {
            held: Some(Box::new(held)),
        }
    }

    /// Gives the lease back: another runner may take it at once. (Dropped instead, it
    /// ends when the store notices, as when the process dies.)
    pub async fn release(self) {
        if let Some(held) = self.held {
            held.release().await;
        }
    }

    /// Whether the lease still holds.
    pub async fn alive(&mut self) -> bool {
        match &mut self.held {
            None => true,
            Some(held) => held.alive().await,
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("shared", &self.held.is_some())
            .finish()
    }
}
