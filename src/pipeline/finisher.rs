//! Marks handled inbox items done, in batches, so that marking items done does not compete with
//! acknowledging new transactions one fsync at a time.

use tokio::sync::{mpsc, watch};

use crate::storage::Store;

/// Ids waiting to be marked done, at most.
const PENDING: usize = 4096;
/// Ids marked done in one write, at most.
const BATCH: usize = 2000;

/// Where handled inbox items are reported.
#[derive(Debug, Clone)]
pub struct Finisher {
    tx: mpsc::Sender<i64>,
}

impl Finisher {
    /// A finisher and the receiving end for [`run`].
    pub fn new() -> (Self, mpsc::Receiver<i64>) {
        let (tx, rx) = mpsc::channel(PENDING);
        (Self { tx }, rx)
    }

    /// Reports an inbox item handled (waits when the writer is behind).
    pub async fn finish(&self, id: i64) {
        // Gone only at shutdown: the item is then handled again after the restart.
        let _ = self.tx.send(id).await;
    }
}

/// Marks reported items done until shutdown, then flushes what is left.
pub(super) async fn run(
    store: Store,
    mut rx: mpsc::Receiver<i64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(id) => batch.push(id),
                None => break,
            },
            _ = shutdown.changed() => break,
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        flush(&store, &mut batch).await;
    }
    while let Ok(id) = rx.try_recv() {
        batch.push(id);
    }
    flush(&store, &mut batch).await;
}

async fn flush(store: &Store, batch: &mut Vec<i64>) {
    if batch.is_empty() {
        return;
    }
    match store.finish_inbox_many(batch).await {
        Ok(()) => batch.clear(),
        // Kept for the next flush; at worst they are handled again after a restart.
        Err(err) => tracing::error!(%err, pending = batch.len(), "cannot mark inbox items done"),
    }
}
