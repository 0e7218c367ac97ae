//! Read models kept in memory over any store's log.

use std::future::Future;

use super::{
    Changes, DeadLetter, DeadLetterAction, DocumentProjection, Horizon, LogAfter, ProjectionState,
    ProjectionStore, Scanned, Slot,
};
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::memory::MemoryStore;
use crate::store::{EventStore, StoreError, Subscription};

/// A store whose projections keep their documents and checkpoints in this process's
/// memory, over the log of `S`: for tests and small services that rebuild their read
/// models when they start. Events are read from, and appended to, `S` as usual.
///
/// ```
/// use annals::prelude::*;
/// use annals::projection::{Documents, InMemory, Runner};
/// use annals::SqliteStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Pinged;
///
/// #[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
/// struct Pings { count: u32 }
///
/// #[projection]
/// impl Pings {
///     #[handle]
///     fn pinged(&mut self, _: &Pinged) { self.count += 1 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let log = SqliteStore::in_memory().await?;
/// log.append("pinger-1", ExpectedVersion::Any, vec![NewEvent::from_event(&Pinged)?]).await?;
/// let store = InMemory::new(log);
/// Runner::new(store.clone()).with::<Pings>().catch_up().await?;
/// assert_eq!(Documents::<Pings, _>::new(store).get("pinger-1").await?, Some(Pings { count: 1 }));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct InMemory<S> {
    log: S,
    /// Its projections only: its own log stays empty.
    memory: MemoryStore,
}

impl<S: ProjectionStore> InMemory<S> {
    /// Projections in memory over `log`, starting empty.
    pub fn new(log: S) -> Self {
        Self {
            log,
            memory: MemoryStore::new(),
        }
    }

    /// The store whose log this reads.
    pub fn log(&self) -> &S {
        &self.log
    }
}

impl<S: ProjectionStore> EventStore for InMemory<S> {
    type Session<'a>
        = S::Session<'a>
    where
        Self: 'a;

    fn session(&self) -> impl Future<Output = Result<Self::Session<'_>, StoreError>> + Send {
        self.log.session()
    }

    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.log.append_signal()
    }

    fn subscribe(&self, from: Checkpoint) -> Subscription {
        self.log.subscribe(from)
    }
}

impl<S: ProjectionStore> ProjectionStore for InMemory<S> {
    async fn open_projection(
        &self,
        name: &str,
        version: u32,
    ) -> Result<(Slot, Checkpoint), StoreError> {
        self.memory.open_projection(name, version).await
    }

    async fn begin_rebuild(&self, name: &str, version: u32) -> Result<Slot, StoreError> {
        self.memory.begin_rebuild(name, version).await
    }

    async fn promote(&self, slot: &Slot, at: Checkpoint) -> Result<bool, StoreError> {
        self.memory.promote(slot, at).await
    }

    async fn projection_versions(&self, name: &str) -> Result<Vec<(u32, bool)>, StoreError> {
        self.memory.projection_versions(name).await
    }

    async fn drop_projection(&self, name: &str, version: u32) -> Result<bool, StoreError> {
        self.memory.drop_projection(name, version).await
    }

    async fn park(&self, slot: &Slot, letters: &[DeadLetter]) -> Result<(), StoreError> {
        self.memory.park(slot, letters).await
    }

    async fn dead_letters(&self, slot: &Slot) -> Result<Vec<DeadLetter>, StoreError> {
        self.memory.dead_letters(slot).await
    }

    async fn settle_dead_letters(
        &self,
        slot: &Slot,
        key: &str,
        letters: &[Checkpoint],
        document: Option<Option<String>>,
        action: &str,
    ) -> Result<u64, StoreError> {
        self.memory
            .settle_dead_letters(slot, key, letters, document, action)
            .await
    }

    async fn dead_letter_actions(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<DeadLetterAction>, StoreError> {
        self.memory.dead_letter_actions(name, version).await
    }

    /// The events are in the log's store.
    async fn read_event(&self, at: Checkpoint) -> Result<Option<RecordedEvent>, StoreError> {
        self.log.read_event(at).await
    }

    async fn projection_checkpoint(&self, slot: &Slot) -> Result<Option<Checkpoint>, StoreError> {
        self.memory.projection_checkpoint(slot).await
    }

    async fn load_documents(
        &self,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.memory.load_documents(slot, keys).await
    }

    async fn commit_documents(
        &self,
        slot: &Slot,
        from: Checkpoint,
        to: Checkpoint,
        changes: Changes,
    ) -> Result<bool, StoreError> {
        self.memory.commit_documents(slot, from, to, changes).await
    }

    async fn record_failure(
        &self,
        slot: &Slot,
        failure: Option<&str>,
        stopped: bool,
    ) -> Result<(), StoreError> {
        self.memory.record_failure(slot, failure, stopped).await
    }

    async fn projection_state(
        &self,
        name: &str,
        version: u32,
    ) -> Result<ProjectionState, StoreError> {
        self.memory.projection_state(name, version).await
    }

    async fn read_documents(
        &self,
        name: &str,
        version: u32,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.memory.read_documents(name, version, keys).await
    }

    async fn list_documents(
        &self,
        name: &str,
        version: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.memory
            .list_documents(name, version, after, limit)
            .await
    }

    /// Refused: documents in memory cannot commit in the log's transaction.
    async fn inline<P: DocumentProjection>(self) -> Result<Self, StoreError> {
        Err(StoreError::backend(std::io::Error::other(format!(
            "projection `{}` cannot be inline in memory: its documents would not commit with \
             the append; run it with a `Runner`",
            P::NAME
        ))))
    }

    fn fold_named<F, E>(
        &self,
        after: Checkpoint,
        limit: usize,
        names: &[&str],
        f: F,
    ) -> impl Future<Output = Result<Scanned, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        self.log.fold_named(after, limit, names, f)
    }

    fn horizon(&self) -> impl Future<Output = Result<Option<Horizon>, StoreError>> + Send {
        self.log.horizon()
    }

    async fn log_after(&self, after: Checkpoint) -> Result<LogAfter, StoreError> {
        self.log.log_after(after).await
    }
}
