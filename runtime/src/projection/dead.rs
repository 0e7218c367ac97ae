//! Dead letters: events a projection declared `on_error = "dead_letter"` could not apply,
//! kept by reference, with the later events of the same document parked behind them so
//! that a document never sees its events out of order.

use std::marker::PhantomData;

use super::describe::Described;
use super::letter::{DeadLetter, DeadLetterAction};
use super::{
    Change, DocumentKey, DocumentProjection, Projection, ProjectionError, ProjectionStore, Slot,
};
use crate::event::{Checkpoint, StoredEvent};

/// The dead letters of projection `P` in a store: listed, retried after a fix (in order,
/// per document), or discarded; every retry and discard is recorded.
///
/// ```
/// use annals::prelude::*;
/// use annals::projection::{DeadLetters, Runner};
/// use annals::MemoryStore;
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// struct Paid { cents: i64 }
///
/// #[derive(Default, Serialize, Deserialize, Debug)]
/// struct Ledger { cents: i64 }
///
/// #[projection(on_error = "dead_letter")]
/// impl Ledger {
///     #[handle]
///     fn paid(&mut self, e: &Paid) -> Result<(), String> {
///         if e.cents < 0 { return Err("a payment is never negative".into()) }
///         self.cents += e.cents;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let bad = NewEvent::from_event(&Paid { cents: -5 })?;
/// store.append("ledger-1", ExpectedVersion::Any, vec![bad]).await?;
/// let runner = Runner::new(store.clone()).with::<Ledger>()
///     .options(annals::projection::RunnerOptions::default().dead_letter_after(1));
/// runner.catch_up().await?; // tried once, then set aside: the projection goes on
/// let letters = DeadLetters::<Ledger, _>::new(store.clone());
/// assert_eq!(letters.list().await?.len(), 1);
/// assert_eq!(letters.discard("ledger-1").await?, 1);
/// assert!(letters.list().await?.is_empty());
/// # Ok(()) }
/// ```
pub struct DeadLetters<P, S> {
    store: S,
    projection: PhantomData<fn() -> P>,
}

impl<P: Projection, S: ProjectionStore> DeadLetters<P, S> {
    /// The dead letters of `P` in `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            projection: PhantomData,
        }
    }

    fn error(&self) -> impl Fn(crate::store::StoreError) -> ProjectionError {
        |e| ProjectionError::store(P::NAME, e)
    }

    /// The stored event a dead letter refers to.
    async fn stored(
        &self,
        letter: &DeadLetter,
    ) -> Result<crate::event::RecordedEvent, ProjectionError> {
        let error = self.error();
        self.store
            .read_event(letter.checkpoint)
            .await
            .map_err(&error)?
            .ok_or_else(|| {
                error(crate::store::StoreError::backend(std::io::Error::other(
                    format!(
                        "dead letter at {} refers to no stored event",
                        letter.checkpoint
                    ),
                )))
            })
    }

    /// Every dead letter of the generation readers see, in the order of the log.
    pub async fn list(&self) -> Result<Vec<DeadLetter>, ProjectionError> {
        self.of(None).await.map(|(_, letters)| letters)
    }

    /// The slot readers see, and its dead letters (of `key` only, when given).
    async fn of(&self, key: Option<&str>) -> Result<(Slot, Vec<DeadLetter>), ProjectionError> {
        let (slot, _) = self
            .store
            .open_projection(P::NAME, P::VERSION)
            .await
            .map_err(self.error())?;
        let mut letters = self.store.dead_letters(&slot).await.map_err(self.error())?;
        if let Some(key) = key {
            letters.retain(|letter| letter.key == key);
        }
        Ok((slot, letters))
    }

    /// Removes the dead letters of document `key` (of a SQL-table projection: of stream
    /// `key`) without applying them: the projection goes on with the key's later events.
    /// Returns how many it removed.
    pub async fn discard(&self, key: impl DocumentKey) -> Result<u64, ProjectionError> {
        let key = key.to_key();
        let error = self.error();
        let (slot, letters) = self.of(Some(&key)).await?;
        let letters: Vec<Checkpoint> = letters.iter().map(|l| l.checkpoint).collect();
        if letters.is_empty() {
            return Ok(0);
        }
        self.store
            .settle_dead_letters(&slot, &key, &letters, None, "discard")
            .await
            .map_err(&error)
    }

    /// What was done with dead letters of `P`, oldest first.
    pub async fn actions(&self) -> Result<Vec<DeadLetterAction>, ProjectionError> {
        self.store
            .dead_letter_actions(P::NAME, P::VERSION)
            .await
            .map_err(self.error())
    }
}

impl<P: DocumentProjection, S: ProjectionStore> DeadLetters<P, S> {
    /// Applies the dead letters of document `key`, in the order of the log, with the
    /// handlers as they are now (after a fix), and removes them: all of them, with the
    /// document, in one transaction, or, if a handler still fails, none. Returns how many
    /// were applied. Events parked for the key meanwhile stay, for the next retry.
    pub async fn retry(&self, key: impl DocumentKey) -> Result<u64, ProjectionError> {
        let key = key.to_key();
        let described = Described::of::<P>();
        let error = self.error();
        let (slot, letters) = self.of(Some(&key)).await?;
        if letters.is_empty() {
            return Ok(0);
        }
        let stored = self
            .store
            .load_documents(&slot, std::slice::from_ref(&key))
            .await
            .map_err(&error)?;
        let mut document = match stored.first() {
            Some((_, body)) => {
                (described.read_document)(body).map_err(|source| ProjectionError::Document {
                    projection: P::NAME.to_owned(),
                    key: key.clone(),
                    source,
                })?
            }
            None => (described.new_document)(),
        };
        let mut change = Change::Keep;
        for letter in &letters {
            let record = self.stored(letter).await?;
            let event = StoredEvent::of(&record);
            let Some(routed) = (described.route)(&event) else {
                continue;
            };
            let (_, decoded) = routed.map_err(|source| ProjectionError::Decode {
                projection: P::NAME.to_owned(),
                source,
            })?;
            if change == Change::Delete {
                document = (described.new_document)();
            }
            change = (described.apply)(&mut document, decoded).map_err(|source| {
                ProjectionError::Handler {
                    projection: P::NAME.to_owned(),
                    stream: record.stream_id.clone(),
                    stream_version: record.stream_version,
                    position: record.position,
                    event: record.name.clone(),
                    source,
                }
            })?;
        }
        let body = match change {
            Change::Delete => None,
            Change::Keep => Some(
                (described.write_document)(&document)
                    .unwrap_or_else(|| {
                        Err(serde::ser::Error::custom(
                            "the document is not of the projection's type",
                        ))
                    })
                    .map_err(|source| ProjectionError::Document {
                        projection: P::NAME.to_owned(),
                        key: key.clone(),
                        source,
                    })?,
            ),
        };
        let applied: Vec<Checkpoint> = letters.iter().map(|l| l.checkpoint).collect();
        self.store
            .settle_dead_letters(&slot, &key, &applied, Some(body), "retry")
            .await
            .map_err(&error)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<P, S> DeadLetters<P, S>
where
    P: super::SqlProjection,
    S: super::SqlStore<Database = P::Database>,
{
    /// Applies the dead letters of `stream` (a SQL-table projection keeps the order of
    /// each stream), in the order of the log, with the handlers as they are now (after a
    /// fix), and removes them: all of them, with what the handlers wrote, in one
    /// transaction, or, if a handler still fails, none. Returns how many were applied.
    pub async fn retry_stream(&self, stream: &str) -> Result<u64, ProjectionError> {
        let error = self.error();
        let (slot, letters) = self.of(Some(stream)).await?;
        // Read before the transaction: on a database of one connection (SQLite in
        // memory), the transaction holds it.
        let mut records = Vec::with_capacity(letters.len());
        for letter in &letters {
            records.push(self.stored(letter).await?);
        }
        if records.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await.map_err(&error)?;
        for record in &records {
            let event = StoredEvent::of(record);
            super::sql::apply_one::<P>(&mut tx, &event).await?;
        }
        let applied: Vec<Checkpoint> = letters.iter().map(|l| l.checkpoint).collect();
        let settled = self
            .store
            .settle_in(&mut tx, &slot, stream, &applied, "retry")
            .await
            .map_err(&error)?;
        if settled > 0 {
            tx.commit()
                .await
                .map_err(|e| error(crate::store::StoreError::backend(e)))?;
        }
        Ok(settled)
    }
}
