//! Routes inbox items to one queue per room: turns in a room run one at a time in arrival
//! order; rooms run concurrently, bounded by a semaphore around kernel turns.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use ruma::OwnedRoomId;
use tokio::sync::{Notify, mpsc, watch};

use super::{Rooms, event::RoomEvent};
use crate::{
    crypto::CryptoChanges,
    storage::{InboxItem, InboxKind, Undecrypted},
};

/// Work for a room's queue.
#[derive(Debug)]
pub(super) enum Work {
    /// An event from the inbox.
    Inbox(InboxItem),
    /// An event kept undecryptable, whose room key has now arrived.
    Retry(Undecrypted),
}

/// How long an idle room keeps its worker task.
const IDLE_ROOM: Duration = Duration::from_secs(300);

type Queues = Arc<Mutex<HashMap<OwnedRoomId, mpsc::UnboundedSender<Work>>>>;

impl Rooms {
    /// Reads the inbox (everything left from before a restart first) and feeds room queues
    /// until `shutdown` turns true.
    pub async fn run_inbox(
        self: Arc<Self>,
        ready: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let queues: Queues = Arc::default();
        let mut cursor = 0_i64;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let items = match self.store.pending_inbox(cursor, 512).await {
                Ok(items) => items,
                Err(err) => {
                    tracing::error!(%err, "cannot read the inbox; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            };
            if items.is_empty() {
                tokio::select! {
                    _ = ready.notified() => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            for item in items {
                cursor = cursor.max(item.id);
                if item.kind == InboxKind::Crypto {
                    // Handled before the events of its transaction: they may need its keys.
                    self.receive_crypto(&queues, &item, &shutdown).await;
                    self.finished(item.id);
                } else {
                    self.route(&queues, item, &shutdown).await;
                }
            }
        }
    }

    /// Feeds a transaction's encryption data to the twins' machines, then queues the events
    /// that were waiting for the room keys that arrived.
    async fn receive_crypto(
        self: &Arc<Self>,
        queues: &Queues,
        item: &InboxItem,
        shutdown: &watch::Receiver<bool>,
    ) {
        let changes: CryptoChanges = match serde_json::from_str(&item.event) {
            Ok(changes) => changes,
            Err(err) => {
                tracing::error!(%err, id = item.id, "stored encryption data unreadable; skipped");
                return;
            }
        };
        let arrived = match self.crypto.receive(&changes).await {
            Ok(arrived) => arrived,
            Err(err) => {
                tracing::error!(%err, "encryption data could not be processed");
                return;
            }
        };
        for key in arrived {
            match self
                .store
                .undecrypted_for_session(key.room_id.as_str(), &key.session_id)
                .await
            {
                Ok(waiting) => {
                    for utd in waiting {
                        tracing::info!(room = %key.room_id, event = %utd.event_id, "room key arrived; retrying");
                        self.enqueue(queues, key.room_id.clone(), Work::Retry(utd), shutdown);
                    }
                }
                Err(err) => tracing::error!(%err, "cannot read events waiting for keys"),
            }
        }
    }

    async fn route(
        self: &Arc<Self>,
        queues: &Queues,
        item: InboxItem,
        shutdown: &watch::Receiver<bool>,
    ) {
        let event = RoomEvent::parse(&item.event);
        let Some(room) = event.room_id().map(ToOwned::to_owned) else {
            // Nothing a room session acts on: done at once.
            self.finished(item.id);
            return;
        };
        self.enqueue(queues, room, Work::Inbox(item), shutdown);
    }

    /// Puts work on its room's queue, starting the room's worker when it has none.
    fn enqueue(
        self: &Arc<Self>,
        queues: &Queues,
        room: OwnedRoomId,
        item: Work,
        shutdown: &watch::Receiver<bool>,
    ) {
        let Ok(mut map) = queues.lock() else {
            tracing::error!("room queue map poisoned");
            return;
        };
        let item = match map.get(&room) {
            Some(tx) => match tx.send(item) {
                Ok(()) => return,
                // The worker ended between lookup and send: start a new one.
                Err(mpsc::error::SendError(item)) => item,
            },
            None => item,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // The receiver is alive: we hold it right here.
        let _ = tx.send(item);
        map.insert(room.clone(), tx);
        drop(map);
        tokio::spawn(
            self.clone()
                .room_worker(room, rx, queues.clone(), shutdown.clone()),
        );
    }

    /// Marks handled inbox items done, in batches, until shutdown (then flushes what is left).
    pub async fn run_finisher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = self.done_rx.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(id) => batch.push(id),
                    None => break,
                },
                _ = shutdown.changed() => break,
            }
            while batch.len() < 2000 {
                match rx.try_recv() {
                    Ok(id) => batch.push(id),
                    Err(_) => break,
                }
            }
            self.flush_finished(&mut batch).await;
        }
        while let Ok(id) = rx.try_recv() {
            batch.push(id);
        }
        self.flush_finished(&mut batch).await;
    }

    async fn flush_finished(&self, batch: &mut Vec<i64>) {
        if batch.is_empty() {
            return;
        }
        match self.store.finish_inbox_many(batch).await {
            Ok(()) => batch.clear(),
            // Kept for the next flush; at worst they are handled again after a restart.
            Err(err) => {
                tracing::error!(%err, pending = batch.len(), "cannot mark inbox items done")
            }
        }
    }

    async fn room_worker(
        self: Arc<Self>,
        room: OwnedRoomId,
        mut rx: mpsc::UnboundedReceiver<Work>,
        queues: Queues,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(IDLE_ROOM, rx.recv()) => next,
                _ = shutdown.changed() => return,
            };
            match next {
                Ok(Some(work)) => {
                    tokio::select! {
                        _ = self.handle(work) => {}
                        // Unfinished items stay in the inbox and are handled after a restart.
                        _ = shutdown.changed() => return,
                    }
                }
                Ok(None) => return,
                Err(_idle) => {
                    let Ok(mut map) = queues.lock() else { return };
                    if rx.is_empty() {
                        map.remove(&room);
                        return;
                    }
                }
            }
        }
    }
}
