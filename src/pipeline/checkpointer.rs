//! The checkpointer: keeps SQLite's write-ahead log short from a task of its own, so commits
//! (the ack of a transaction among them) only append to the log and never copy it into the
//! database themselves. Nothing to do on PostgreSQL.

use std::time::Duration;

use tokio::sync::watch;

use crate::storage::Store;

/// How often the log is checkpointed: at a few thousand events/s, a few hundred kB of log.
const PERIOD: Duration = Duration::from_millis(250);

pub(super) async fn run(store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = shutdown.changed() => return,
        }
        match store.checkpoint_wal().await {
            Ok(None) => return, // PostgreSQL, or SQLite in memory: no log
            Ok(Some(_)) if failing => {
                failing = false;
                tracing::info!("the SQLite log is checkpointed again");
            }
            Ok(Some(_)) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot checkpoint the SQLite log; commits do it until this recovers");
            }
            Err(_) => {}
        }
    }
}
