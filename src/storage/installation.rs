//! The installation id recorded in the database (see [`crate::installation`]).

use super::{Backend, StorageError, Store, connect, now_ms};

impl Store {
    /// The installation id recorded in the database, if any.
    pub async fn installation_id(&self) -> Result<Option<String>, StorageError> {
        sqlx::query_scalar::<_, String>("SELECT id FROM installation")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StorageError::query("reading the installation id", &e))
    }

    /// Records `id` as the installation id unless one is recorded already; returns the id now
    /// recorded (`id`, or the earlier one). Concurrent calls agree on one id.
    pub async fn set_installation_id(&self, id: &str) -> Result<String, StorageError> {
        // The one-row index makes a second id a conflict, whoever inserts first.
        sqlx::query(
            "INSERT INTO installation (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query("recording the installation id", &e))?;
        self.installation_id()
            .await?
            .ok_or_else(|| StorageError::NotFound("the installation id just recorded".into()))
    }

    /// How many twins the database knows.
    pub async fn twin_count(&self) -> Result<i64, StorageError> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM twins")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StorageError::query("counting twins", &e))
    }

    /// Whether the database lives in memory only (`sqlite::memory:`, `mode=memory`): gone when
    /// the store closes.
    pub fn is_in_memory(&self) -> bool {
        self.backend == Backend::Sqlite && connect::is_sqlite_memory(&self.url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn the_first_installation_id_stays() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.installation_id().await.unwrap(), None);
        assert_eq!(store.set_installation_id("first").await.unwrap(), "first");
        assert_eq!(store.set_installation_id("second").await.unwrap(), "first");
        assert_eq!(
            store.installation_id().await.unwrap().as_deref(),
            Some("first")
        );
        store.close().await;
    }

    #[tokio::test]
    async fn memory_databases_are_recognised() {
        for (url, memory) in [("sqlite::memory:", true), ("sqlite://?mode=memory", true)] {
            let store = Store::connect(url).await.unwrap();
            assert_eq!(store.is_in_memory(), memory, "{url}");
            store.close().await;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/a.db", dir.path().display()))
            .await
            .unwrap();
        assert!(!store.is_in_memory());
        assert_eq!(store.twin_count().await.unwrap(), 0);
        store.close().await;
    }
}
