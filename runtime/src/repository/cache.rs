//! The aggregate cache: recently used states, held by one command at a time.

use std::collections::HashMap;
use std::sync::Mutex;

/// A state at a stream version, between commands or during one.
pub(super) struct Entry<A> {
    pub state: A,
    pub version: u64,
    /// The version of the snapshot the state descends from (0: none).
    pub base: u64,
}

impl<A: Default> Entry<A> {
    /// A bet that the stream is new: the default state at version 0.
    pub fn bet() -> Self {
        Self {
            state: A::default(),
            version: 0,
            base: 0,
        }
    }
}

/// Recently used aggregates: two generations of up to `capacity / 2` entries each. New and
/// used entries go to the young one; when it is full it becomes the old one and the old
/// one is dropped. An approximate LRU with O(1) operations and no per-entry bookkeeping.
pub(super) struct Cache<A> {
    pub capacity: usize,
    generations: Mutex<[HashMap<String, Entry<A>>; 2]>,
}

impl<A> Cache<A> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }

    /// Removes and returns the entry: the command owns it until it puts it back.
    pub fn take(&self, stream: &str) -> Option<Entry<A>> {
        // A panic elsewhere cannot leave an entry half-written: entries move whole.
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let [young, old] = &mut *generations;
        young.remove(stream).or_else(|| old.remove(stream))
    }

    pub fn put(&self, stream: &str, entry: Entry<A>) {
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let [young, old] = &mut *generations;
        if young.len() >= self.capacity.div_ceil(2) && !young.contains_key(stream) {
            *old = std::mem::take(young);
        }
        old.remove(stream);
        young.insert(stream.to_owned(), entry);
    }
}
