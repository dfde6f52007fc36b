//! Numbers about stored state for the metrics (the inbox's age).

use std::time::Duration;

use super::{StorageError, Store, now_ms};

impl Store {
    /// How long the oldest item still in the inbox has waited: since its transaction was
    /// received. `None` when the inbox is empty.
    pub async fn inbox_oldest_pending_age(&self) -> Result<Option<Duration>, StorageError> {
        // The inbox has no time of its own; its transaction's row has. Ids follow arrival, so
        // the lowest id is the oldest item: one lookup, not a join over a long backlog.
        let oldest = sqlx::query_scalar::<_, i64>(
            "SELECT t.received_at FROM inbox i JOIN transactions t ON t.txn_id = i.txn_id \
             ORDER BY i.id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query("reading the age of the inbox", &e))?;
        Ok(oldest.map(|received_at| {
            let waited = now_ms().saturating_sub(received_at).max(0);
            Duration::from_millis(u64::try_from(waited).unwrap_or(0))
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn oldest_pending_age_follows_the_oldest_unfinished_item() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.inbox_oldest_pending_age().await.unwrap(), None);

        store
            .record_transaction("old", &["{\"n\":1}".to_owned()])
            .await
            .unwrap();
        store
            .record_transaction("new", &["{\"n\":2}".to_owned()])
            .await
            .unwrap();
        // Back-date the first transaction by a minute.
        sqlx::query("UPDATE transactions SET received_at = received_at - 60000 WHERE txn_id = $1")
            .bind("old")
            .execute(&store.pool)
            .await
            .unwrap();
        let age = store.inbox_oldest_pending_age().await.unwrap().unwrap();
        assert!(
            age >= Duration::from_secs(60) && age < Duration::from_secs(70),
            "{age:?}"
        );

        let items = store.pending_inbox(0, 10).await.unwrap();
        store.finish_inbox(items[0].id).await.unwrap();
        let age = store.inbox_oldest_pending_age().await.unwrap().unwrap();
        assert!(age < Duration::from_secs(10), "{age:?}");

        store.finish_inbox(items[1].id).await.unwrap();
        assert_eq!(store.inbox_oldest_pending_age().await.unwrap(), None);
        store.close().await;
    }
}
