//! Wake-ups: subscribers in this process hear of an append at once, other processes
//! through `LISTEN`/`NOTIFY`, sent after the commit (polling is the fallback).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};

use super::PostgresStore;

/// The least time between two notifications to other processes. In-process subscribers
/// are woken at once; other processes hear of a burst of appends at most this late.
const NOTIFY_SPACING: Duration = Duration::from_millis(5);

impl PostgresStore {
    /// Wakes this process's subscribers now, and other processes' soon.
    pub(super) fn announce(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        let _ = self.notify.try_send(());
    }

    /// Starts the task that turns notifications into append signals, unless it runs.
    pub(super) fn ensure_listener(&self) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, channel) = (self.own.clone(), self.sql.channel.clone());
        let (signal, listening) = (Arc::downgrade(&self.appended), Arc::clone(&self.listening));
        tokio::spawn(async move {
            listen(pool, &channel, signal).await;
            listening.store(false, Ordering::Release);
        });
    }
}

/// Forwards notifications until no store or subscriber is left. Subscribers poll as well,
/// so a lost connection delays them by at most their poll interval.
async fn listen(pool: PgPool, channel: &str, signal: Weak<watch::Sender<u64>>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for appends; subscribers fall back to polling");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if signal.upgrade().is_none_or(|s| s.receiver_count() == 0) {
                    return;
                }
                continue;
            }
        };
        if let Err(error) = listener.listen(channel).await {
            tracing::warn!(%error, "LISTEN failed; subscribers fall back to polling");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            let Some(sender) = signal.upgrade() else {
                return;
            };
            tokio::select! {
                received = listener.try_recv() => {
                    // `None`: the connection dropped and notifications may have been lost.
                    sender.send_modify(|n| *n = n.wrapping_add(1));
                    match received {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "notification connection failed; reconnecting");
                            break;
                        }
                    }
                }
                () = sender.closed() => return,
            }
        }
    }
}

/// Tells other processes' listeners that events were appended, at most once per
/// [`NOTIFY_SPACING`], until every handle of the store is gone. A NOTIFY inside the
/// appending transaction would instead serialise all concurrent commits on the database's
/// notification lock.
pub(super) async fn notify_others(pool: PgPool, channel: String, mut pokes: mpsc::Receiver<()>) {
    while pokes.recv().await.is_some() {
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "cannot NOTIFY other processes of appends; they poll");
        }
        tokio::time::sleep(NOTIFY_SPACING).await;
    }
}
