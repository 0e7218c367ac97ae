//! One command at a time per aggregate within a repository: commands for the same
//! aggregate queue instead of racing each other to a conflict, so the conflicts a command
//! meets come from other writers (another process, another repository).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The queues of one repository and its clones, one per aggregate with a command running.
#[derive(Default)]
pub(super) struct Turns {
    queues: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// A command's turn on its aggregate; the next command in the queue goes when it drops.
pub(super) struct Turn<'a> {
    turns: &'a Turns,
    stream: &'a str,
    queue: Arc<AsyncMutex<()>>,
    held: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<AsyncMutex<()>>>> {
        // Entries move whole: a panic elsewhere cannot leave the map half-written.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for the turn of `stream`, first come first served.
    pub(super) async fn take<'a>(&'a self, stream: &'a str) -> Turn<'a> {
        let queue = {
            let mut queues = self.lock();
            match queues.get(stream) {
                Some(queue) => Arc::clone(queue),
                None => {
                    let queue = Arc::new(AsyncMutex::new(()));
                    queues.insert(stream.to_owned(), Arc::clone(&queue));
                    queue
                }
            }
        };
        let held = Some(Arc::clone(&queue).lock_owned().await);
        Turn {
            turns: self,
            stream,
            queue,
            held,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        // Under the map's lock no one can take the queue: when only the map and this turn
        // hold it, no command waits, and the entry goes (the map stays as small as the
        // number of aggregates with a command running).
        let mut queues = self.turns.lock();
        if Arc::strong_count(&self.queue) == 2 {
            queues.remove(self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn commands_on_one_aggregate_take_turns_and_the_queue_goes_when_empty() {
        let turns = Arc::new(Turns::default());
        let running = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (turns, running) = (Arc::clone(&turns), Arc::clone(&running));
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let _turn = turns.take("a-1").await;
                        assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "one at a time");
                        tokio::task::yield_now().await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert!(turns.lock().is_empty(), "no queue is left behind");
        // Different aggregates do not wait for each other.
        let first = turns.take("a-1").await;
        let second = turns.take("a-2").await;
        drop((first, second));
        assert!(turns.lock().is_empty());
    }
}
