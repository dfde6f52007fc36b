//! What end-to-end encryption needs kept: events that could not be decrypted yet, and which
//! rooms are encrypted.

use sqlx::Row;

use ruma::{EventId, RoomId, UserId};

use super::{StorageError, Store, Undecrypted, id_column, now_ms};

/// Reads the columns of [`Undecrypted`], in the order `undecrypted_row` expects.
macro_rules! select_undecrypted {
    ($where:literal) => {
        concat!(
            "SELECT id, room_id, twin_id, session_id, event_id, event_json, since_ms \
             FROM undecrypted ",
            $where
        )
    };
}

fn undecrypted_row(row: &sqlx::any::AnyRow) -> Result<Undecrypted, sqlx::Error> {
    Ok(Undecrypted {
        id: row.try_get(0)?,
        room_id: id_column(row, 1)?,
        twin_id: id_column(row, 2)?,
        session_id: row.try_get(3)?,
        event_id: id_column(row, 4)?,
        event_json: row.try_get(5)?,
        since_ms: row.try_get(6)?,
    })
}

impl Store {
    /// Keeps an event `twin_id` could not decrypt (its room key, of Megolm session `session_id`,
    /// is missing) until [`Store::remove_undecrypted`]; returns its row id.
    ///
    /// Idempotent per `(twin_id, event_id)`: storing the same event again for the same twin
    /// changes nothing and returns the id of the row already there (with its first
    /// `since_ms`).
    pub async fn add_undecrypted(
        &self,
        room_id: &RoomId,
        twin_id: &UserId,
        session_id: &str,
        event_id: &EventId,
        event_json: &str,
    ) -> Result<i64, StorageError> {
        // The no-op update makes a repeat return the existing id in the same statement, which
        // stays right when a concurrent call stores the same event at the same time.
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO undecrypted \
             (room_id, twin_id, session_id, event_id, event_json, since_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (twin_id, event_id) DO UPDATE SET event_id = undecrypted.event_id \
             RETURNING id",
        )
        .bind(room_id.as_str())
        .bind(twin_id.as_str())
        .bind(session_id)
        .bind(event_id.as_str())
        .bind(event_json)
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(
                format_args!("keeping undecrypted event {event_id} of {twin_id} in {room_id}"),
                &e,
            )
        })
    }

    /// Like [`Store::add_undecrypted`], and says whether the event is new: `(row id, true)`
    /// the first time, `(row id, false)` when it was kept already (key requests go out once).
    pub async fn keep_undecrypted(
        &self,
        room_id: &RoomId,
        twin_id: &UserId,
        session_id: &str,
        event_id: &EventId,
        event_json: &str,
    ) -> Result<(i64, bool), StorageError> {
        let what = || format!("keeping undecrypted event {event_id} of {twin_id} in {room_id}");
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO undecrypted \
             (room_id, twin_id, session_id, event_id, event_json, since_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (twin_id, event_id) DO NOTHING RETURNING id",
        )
        .bind(room_id.as_str())
        .bind(twin_id.as_str())
        .bind(session_id)
        .bind(event_id.as_str())
        .bind(event_json)
        .bind(now_ms())
        .fetch_optional(&self.writer)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        if let Some(id) = inserted {
            return Ok((id, true));
        }
        let id = self
            .add_undecrypted(room_id, twin_id, session_id, event_id, event_json)
            .await?;
        Ok((id, false))
    }

    /// Undecrypted events of a room waiting for the room key of Megolm session `session_id`,
    /// oldest first (every twin's).
    pub async fn undecrypted_for_session(
        &self,
        room_id: &RoomId,
        session_id: &str,
    ) -> Result<Vec<Undecrypted>, StorageError> {
        let what = || format!("reading undecrypted events of session {session_id} in {room_id}");
        let rows = sqlx::query(select_undecrypted!(
            "WHERE room_id = $1 AND session_id = $2 ORDER BY id"
        ))
        .bind(room_id.as_str())
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(undecrypted_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Undecrypted events of a room, whatever their session and twin, oldest first.
    pub async fn undecrypted_for_room(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<Undecrypted>, StorageError> {
        let what = || format!("reading undecrypted events in {room_id}");
        let rows = sqlx::query(select_undecrypted!("WHERE room_id = $1 ORDER BY id"))
            .bind(room_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(undecrypted_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Forgets an undecrypted event (decrypted at last, or given up on). `true` when this call
    /// removed it: of two paths that decrypt the same event (a retry when its key arrived, and
    /// the check right after storing it), only the one that removes the row handles the event.
    /// Removing it twice, or an unknown id, is not an error.
    pub async fn remove_undecrypted(&self, id: i64) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM undecrypted WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("removing undecrypted event {id}"), &e)
            })?;
        Ok(done.rows_affected() > 0)
    }

    /// Undecrypted events with `id > after_id`, oldest first, at most `limit` (the sweep at
    /// start and the periodic one read them all, page by page).
    pub async fn undecrypted_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Undecrypted>, StorageError> {
        let what = || format!("reading undecrypted events after {after_id}");
        let rows = sqlx::query(select_undecrypted!("WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(undecrypted_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Undecrypted events kept since before `cutoff_ms` (Unix milliseconds), oldest first, at
    /// most `limit`: the ones to give up on.
    pub async fn undecrypted_before(
        &self,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<Undecrypted>, StorageError> {
        let what = || "reading expired undecrypted events".to_owned();
        let rows = sqlx::query(select_undecrypted!(
            "WHERE since_ms < $1 ORDER BY id LIMIT $2"
        ))
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(undecrypted_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Count of undecrypted events kept, all rooms and twins.
    pub async fn undecrypted_count(&self) -> Result<i64, StorageError> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM undecrypted")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StorageError::query("counting undecrypted events", &e))
    }

    /// Records whether a room is encrypted (from its `m.room.encryption` state).
    ///
    /// One-way: once a room is recorded encrypted, `set_room_encrypted(room, false)` is ignored
    /// and the room stays encrypted. Matrix rooms cannot turn encryption off, so a `false` for
    /// such a room can only come from a spoofed or stale state read, and honouring it would make
    /// the twin send plaintext into an encrypted room. `false` for a room not recorded yet, or
    /// recorded unencrypted, is stored.
    pub async fn set_room_encrypted(
        &self,
        room_id: &RoomId,
        encrypted: bool,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO room_encryption (room_id, encrypted, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id) DO UPDATE SET encrypted = excluded.encrypted, \
             updated_at = excluded.updated_at WHERE room_encryption.encrypted = 0",
        )
        .bind(room_id.as_str())
        .bind(i32::from(encrypted))
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(
                format_args!("saving whether room {room_id} is encrypted"),
                &e,
            )
        })?;
        Ok(())
    }

    /// Whether a room is encrypted, as recorded by [`Store::set_room_encrypted`]; `None` when
    /// nothing was ever recorded for it.
    pub async fn room_encrypted(&self, room_id: &RoomId) -> Result<Option<bool>, StorageError> {
        let encrypted: Option<i64> =
            sqlx::query_scalar("SELECT encrypted FROM room_encryption WHERE room_id = $1")
                .bind(room_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| {
                    StorageError::query(
                        format_args!("reading whether room {room_id} is encrypted"),
                        &e,
                    )
                })?;
        Ok(encrypted.map(|e| e != 0))
    }
}
