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
use crate::storage::InboxItem;

/// How long an idle room keeps its worker task.
const IDLE_ROOM: Duration = Duration::from_secs(300);

type Queues = Arc<Mutex<HashMap<OwnedRoomId, mpsc::UnboundedSender<InboxItem>>>>;

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
                self.route(&queues, item, &shutdown).await;
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
        mut rx: mpsc::UnboundedReceiver<InboxItem>,
        queues: Queues,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(IDLE_ROOM, rx.recv()) => next,
                _ = shutdown.changed() => return,
            };
            match next {
                Ok(Some(item)) => {
                    tokio::select! {
                        _ = self.handle(item) => {}
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
