//! One read for every part of a sharded rebuild: the log is read and decoded once, and
//! each part applies and commits its own documents, with its own checkpoint, at once.

use super::{Read, Worker};
use crate::projection::describe::Described;
use crate::projection::{ProjectionError, ProjectionStore, Shard};

/// A batch read once, split among the parts.
pub(crate) struct Split {
    /// Each part's share, in the order of the parts given; each ends where the read ended.
    pub(crate) parts: Vec<Read>,
    /// How many events the read passed.
    pub(crate) read: usize,
    /// Whether the read stopped early (a store error or an event that does not decode):
    /// the first part's share carries the error, after the events before it.
    pub(crate) stopped: bool,
}

impl<S: ProjectionStore> Worker<S> {
    /// Reads the next batch of the whole log once and splits what it handles among
    /// `parts` by key (the documents of other parts are left out); moves this reader's
    /// checkpoint past it.
    pub(crate) async fn read_split(
        &mut self,
        described: Described,
        parts: &[Shard],
    ) -> Result<Split, ProjectionError> {
        let mut read = self.read(described, self.options.batch_size).await?;
        let (last, seen) = (read.last, read.seen);
        let mut split: Vec<Read> = parts
            .iter()
            .map(|_| Read {
                items: Vec::new(),
                last,
                seen,
                stop: None,
            })
            .collect();
        let stopped = read.stop.is_some();
        if let Some(first) = split.first_mut() {
            first.stop = read.stop.take();
        }
        for item in read.items {
            // The documents of parts other runners build are theirs.
            if let Some(part) = parts.iter().position(|p| p.holds(&item.key)) {
                split[part].items.push(item);
            }
        }
        self.checkpoint = last;
        Ok(Split {
            parts: split,
            read: seen,
            stopped,
        })
    }

    /// Applies this part's share of a batch read for every part, and commits it with the
    /// part's checkpoint, as its own batch would.
    pub(crate) async fn apply_share(
        &mut self,
        described: Described,
        read: Read,
    ) -> Result<(), ProjectionError> {
        self.apply_read(described, read).await.map(|_| ())
    }
}
