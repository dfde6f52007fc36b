//! The SQLite write-ahead log, checkpointed off the write path.
//!
//! SQLite's automatic checkpoint runs inside whichever commit makes the log cross its threshold:
//! with `synchronous = FULL` that commit then copies and syncs the whole log into the database
//! before it returns, and when that commit is a transaction's ack the homeserver waits for it.
//! The pipeline's checkpointer calls [`Store::checkpoint_wal`] often instead, so the log stays
//! short and commits only append to it; the automatic checkpoint stays on, at a far higher
//! threshold, as a backstop.

use super::{Backend, StorageError, Store};

/// What one checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// Frames in the log when it ran.
    pub frames: i64,
    /// Frames copied into the database (all of them unless a reader still needed some).
    pub copied: i64,
}

impl Store {
    /// Copies what it can of the SQLite write-ahead log into the database without waiting for
    /// readers or writers (`PRAGMA wal_checkpoint(PASSIVE)`). `None` on PostgreSQL and for an
    /// in-memory database, which have no such log.
    pub async fn checkpoint_wal(&self) -> Result<Option<WalCheckpoint>, StorageError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let (_busy, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| StorageError::query("checkpoint the SQLite log", &e))?;
        // -1: the database is not in WAL mode (in memory).
        Ok((frames >= 0).then_some(WalCheckpoint { frames, copied }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn a_checkpoint_empties_the_log_of_a_file_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/state.db", dir.path().display()))
            .await
            .unwrap();
        let events: Vec<String> = (0..50).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert!(store.record_transaction("t1", &events).await.unwrap());
        let first = store.checkpoint_wal().await.unwrap().unwrap();
        assert!(first.frames > 0, "{first:?}");
        assert_eq!(first.copied, first.frames);
        // Nothing written since: the next writer starts the log again from its beginning.
        assert!(store.record_transaction("t2", &events).await.unwrap());
        let second = store.checkpoint_wal().await.unwrap().unwrap();
        assert_eq!(second.copied, second.frames);
        assert!(second.frames <= first.frames, "{first:?} then {second:?}");
        store.close().await;
    }

    #[tokio::test]
    async fn memory_databases_have_no_log() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.checkpoint_wal().await.unwrap(), None);
        store.close().await;
    }
}
