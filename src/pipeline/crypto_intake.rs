//! The crypto intake: a transaction's encryption data (to-device messages, device-list
//! changes, key counts) split by twin and fed to each twin's machine by that twin's own task.
//!
//! One twin's slow or failing machine never holds up another's, and never costs another twin
//! its room keys. The reader waits a few seconds for the parts (so the events of the same
//! transaction find their keys), then goes on; the inbox item is marked done once every part
//! was fed and the events waiting for the keys that arrived were queued for another try.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::join_all;
use ruma::OwnedUserId;
use tokio::sync::{mpsc, oneshot};

use super::{
    finisher::Finisher,
    queues::{RoomQueues, Work},
};
use crate::{
    crypto::{Crypto, CryptoChanges, CryptoError, RoomKeyArrived, ToDevice},
    storage::{InboxItem, Store},
};

/// How long the reader waits for the parts of one transaction before it goes on.
const FEED_WAIT: Duration = Duration::from_secs(5);
/// Attempts at feeding one twin's part.
const ATTEMPTS: u32 = 3;
/// Parts waiting for one twin, at most.
const PARTS_PER_TWIN: usize = 64;
/// How long an idle twin keeps its task.
const IDLE_TWIN: Duration = Duration::from_secs(60);

/// One twin's share of a transaction's encryption data.
struct Part {
    to_device: Vec<ToDevice>,
    changes: Arc<CryptoChanges>,
    done: oneshot::Sender<()>,
}

/// Feeds encryption data to the twins' machines.
pub(super) struct CryptoIntake {
    crypto: Arc<Crypto>,
    store: Store,
    queues: Arc<RoomQueues>,
    finisher: Finisher,
    workers: Mutex<HashMap<OwnedUserId, mpsc::Sender<Part>>>,
}

impl CryptoIntake {
    pub(super) fn new(
        crypto: Arc<Crypto>,
        store: Store,
        queues: Arc<RoomQueues>,
        finisher: Finisher,
    ) -> Arc<Self> {
        Arc::new(Self {
            crypto,
            store,
            queues,
            finisher,
            workers: Mutex::new(HashMap::new()),
        })
    }

    /// Hands one inbox item of encryption data to the twins it concerns; returns once they
    /// were fed, or after [`FEED_WAIT`] (the item is marked done when they are).
    pub(super) async fn feed(self: &Arc<Self>, item: InboxItem) {
        let changes: CryptoChanges = match serde_json::from_str(&item.event) {
            Ok(changes) => changes,
            Err(err) => {
                tracing::error!(%err, id = item.id, "stored encryption data unreadable; skipped");
                self.finisher.finish(item.id).await;
                return;
            }
        };
        let (mut to_device, unreadable) = changes.to_device_by_user();
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "to-device messages without a readable recipient ignored"
            );
        }
        // The twins it names, and every open machine (device lists concern them all; a closed
        // machine catches up on device lists when it opens).
        let mut twins = changes.addressed_users();
        if !changes.device_lists.changed.is_empty() || !changes.device_lists.left.is_empty() {
            twins.extend(self.crypto.open_twins());
        }
        twins.sort();
        twins.dedup();
        let changes = Arc::new(changes);
        let mut waiting = Vec::with_capacity(twins.len());
        for twin in twins {
            let (done, finished) = oneshot::channel();
            let part = Part {
                to_device: to_device.remove(&twin).unwrap_or_default(),
                changes: changes.clone(),
                done,
            };
            self.send(twin, part).await;
            waiting.push(finished);
        }
        let mut all = Box::pin(join_all(waiting));
        let id = item.id;
        if tokio::time::timeout(FEED_WAIT, &mut all).await.is_ok() {
            self.finisher.finish(id).await;
            return;
        }
        tracing::warn!(
            id,
            "a twin's encryption data is slow to process; going on without it"
        );
        let finisher = self.finisher.clone();
        tokio::spawn(async move {
            all.await;
            finisher.finish(id).await;
        });
    }

    /// Puts a part on its twin's task, starting the task when it has none.
    async fn send(self: &Arc<Self>, twin: OwnedUserId, part: Part) {
        let mut part = part;
        for _ in 0..2 {
            let sender = {
                let mut workers = self
                    .workers
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match workers.get(&twin) {
                    Some(sender) if !sender.is_closed() => sender.clone(),
                    _ => {
                        let (tx, rx) = mpsc::channel(PARTS_PER_TWIN);
                        workers.insert(twin.clone(), tx.clone());
                        tokio::spawn(self.clone().work(twin.clone(), rx));
                        tx
                    }
                }
            };
            match sender.send(part).await {
                Ok(()) => return,
                // The task ended between lookup and send: start a new one.
                Err(mpsc::error::SendError(back)) => part = back,
            }
        }
        tracing::error!(%twin, "cannot hand encryption data to the twin's task");
    }

    /// One twin's task: feeds its parts in order, until idle.
    async fn work(self: Arc<Self>, twin: OwnedUserId, mut rx: mpsc::Receiver<Part>) {
        loop {
            match tokio::time::timeout(IDLE_TWIN, rx.recv()).await {
                Ok(Some(part)) => {
                    self.feed_part(&twin, &part).await;
                    let _ = part.done.send(());
                }
                Ok(None) => return,
                Err(_idle) => {
                    let mut workers = self
                        .workers
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if rx.is_empty() {
                        workers.remove(&twin);
                        return;
                    }
                }
            }
        }
    }

    async fn feed_part(&self, twin: &OwnedUserId, part: &Part) {
        let mut attempt = 0;
        let arrived = loop {
            attempt += 1;
            match self
                .crypto
                .receive(twin, part.to_device.clone(), &part.changes)
                .await
            {
                Ok(arrived) => break arrived,
                Err(err) if attempt < ATTEMPTS && passing(&err) => {
                    tracing::warn!(%twin, %err, attempt, "encryption data not fed yet; retrying");
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
                Err(err) => {
                    tracing::error!(%twin, %err, messages = part.to_device.len(), "encryption data for this twin could not be processed; other twins are not affected");
                    return;
                }
            }
        };
        self.retry_waiting(arrived).await;
    }

    /// Queues another try of every event that waited for a key that arrived.
    async fn retry_waiting(&self, arrived: Vec<RoomKeyArrived>) {
        for key in arrived {
            let waiting = match self
                .store
                .undecrypted_for_session(&key.room_id, &key.session_id)
                .await
            {
                Ok(waiting) => waiting,
                Err(err) => {
                    tracing::error!(%err, "cannot read events waiting for keys; the sweep retries them");
                    continue;
                }
            };
            for kept in waiting {
                tracing::debug!(room = %key.room_id, event = %kept.event_id, "room key arrived; queueing a retry");
                if self
                    .queues
                    .try_push(&key.room_id, Work::Retry(kept))
                    .is_err()
                {
                    tracing::debug!(room = %key.room_id, "room queue full; the sweep retries the event");
                }
            }
        }
    }
}

/// Whether feeding may work on another try (the homeserver or the store was busy).
fn passing(err: &CryptoError) -> bool {
    match err {
        CryptoError::Matrix(err) => err.is_transient(),
        CryptoError::Store(_) | CryptoError::Io { .. } => true,
        _ => false,
    }
}
