//! Which runner works on a projection: a lease, so that of several runners (processes) on
//! one database, one at a time applies each projection; and a runner's presence, so that
//! runners split a sharded projection's parts evenly.

use std::future::Future;
use std::pin::Pin;

use crate::store::StoreError;

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

/// A runner's place among the runners of one projection, while it lasts: how many runners
/// there are tells each its even share of the projection's parts.
///
/// Stores only this process uses count one runner. PostgreSQL holds a shared advisory
/// lock on a connection of its own and counts the lock's holders: a runner that dies or
/// loses its connection is no longer counted.
pub struct Presence {
    counted: Option<Box<dyn Counted>>,
}

/// What a store keeps to count a runner present, asked how many runners are.
pub trait Counted: Send {
    /// How many runners are present, this one included.
    fn runners(&mut self) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send + '_>>;
}

impl Presence {
    /// The presence of the one runner of a store only this process uses.
    pub fn alone() -> Self {
        Self { counted: None }
    }

    /// A presence kept, and counted, by `counted`.
    pub fn counted(counted: impl Counted + 'static) -> Self {
        Self {
            counted: Some(Box::new(counted)),
        }
    }

    /// How many runners are present, this one included (at least one).
    pub async fn runners(&mut self) -> Result<usize, StoreError> {
        match &mut self.counted {
            None => Ok(1),
            Some(counted) => Ok(counted.runners().await?.max(1)),
        }
    }
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("shared", &self.counted.is_some())
            .finish()
    }
}
