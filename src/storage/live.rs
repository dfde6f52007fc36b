//! The messages turns' answers are streamed into (see `turns::live`).

use ruma::{EventId, OwnedEventId, RoomId, UserId};
use sqlx::Row;

use super::{StorageError, Store, now_ms};

impl Store {
    /// Records that the answer of `twin_id` to `event_id` is being written into `message_id`.
    pub async fn set_live_reply(
        &self,
        twin_id: &UserId,
        event_id: &EventId,
        room_id: &RoomId,
        message_id: &EventId,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO live_replies (twin_id, event_id, room_id, message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (twin_id, event_id) DO UPDATE SET message_id = excluded.message_id",
        )
        .bind(twin_id.as_str())
        .bind(event_id.as_str())
        .bind(room_id.as_str())
        .bind(message_id.as_str())
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("recording a live reply of {twin_id}"), &e)
        })?;
        Ok(())
    }

    /// The message the answer of `twin_id` to `event_id` was being written into, if any.
    pub async fn live_reply(
        &self,
        twin_id: &UserId,
        event_id: &EventId,
    ) -> Result<Option<OwnedEventId>, StorageError> {
        let context = || format!("reading a live reply of {twin_id}");
        let row =
            sqlx::query("SELECT message_id FROM live_replies WHERE twin_id = $1 AND event_id = $2")
                .bind(twin_id.as_str())
                .bind(event_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| StorageError::query(context(), &e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row
            .try_get(0)
            .map_err(|e| StorageError::query(context(), &e))?;
        Ok(OwnedEventId::try_from(id).ok())
    }

    /// Forgets the live reply of `twin_id` to `event_id` (its final text was sent).
    pub async fn clear_live_reply(
        &self,
        twin_id: &UserId,
        event_id: &EventId,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM live_replies WHERE twin_id = $1 AND event_id = $2")
            .bind(twin_id.as_str())
            .bind(event_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("clearing a live reply of {twin_id}"), &e)
            })?;
        Ok(())
    }
}
