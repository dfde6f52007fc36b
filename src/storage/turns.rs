//! Turns a twin ran: recorded with their session messages in one database transaction, so a
//! turn never runs twice and its reply and requests are carried out after a crash.

use sqlx::Row;

use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{StorageError, Store, id_column, now_ms, values_rows};

/// A turn a twin ran for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRow {
    /// The twin.
    pub twin_id: OwnedUserId,
    /// The event the turn answered.
    pub event_id: OwnedEventId,
    /// Its room.
    pub room_id: OwnedRoomId,
    /// The reply to post, in Markdown.
    pub reply: String,
    /// The requests the turn's tools left (JSON list).
    pub requests: String,
    /// Whether the reply was sent.
    pub sent: bool,
    /// Whether the requests were carried out.
    pub requests_done: bool,
}

/// What is recorded when a turn ends.
#[derive(Debug, Clone, Copy)]
pub struct TurnRecord<'a> {
    /// The session the turn's messages belong to.
    pub session_id: i64,
    /// The turn's new messages (JSON texts), appended to the session in order.
    pub messages: &'a [String],
    /// The twin.
    pub twin_id: &'a UserId,
    /// The event the turn answered.
    pub event_id: &'a EventId,
    /// Its room.
    pub room_id: &'a RoomId,
    /// The reply to post.
    pub reply: &'a str,
    /// The requests of the turn's tools (JSON list).
    pub requests: &'a str,
}

impl Store {
    /// The turn `twin_id` ran for `event_id`, if it ran.
    pub async fn turn(
        &self,
        twin_id: &UserId,
        event_id: &EventId,
    ) -> Result<Option<TurnRow>, StorageError> {
        let what = || format!("reading the turn of {twin_id} for {event_id}");
        let row = sqlx::query(
            "SELECT twin_id, event_id, room_id, reply, requests, sent, requests_done FROM turns \
             WHERE twin_id = $1 AND event_id = $2",
        )
        .bind(twin_id.as_str())
        .bind(event_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        row.map(|row| -> Result<TurnRow, sqlx::Error> {
            Ok(TurnRow {
                twin_id: id_column(&row, 0)?,
                event_id: id_column(&row, 1)?,
                room_id: id_column(&row, 2)?,
                reply: row.try_get(3)?,
                requests: row.try_get(4)?,
                sent: row.try_get::<i32, _>(5)? == 1,
                requests_done: row.try_get::<i32, _>(6)? == 1,
            })
        })
        .transpose()
        .map_err(|e| StorageError::query(what(), &e))
    }

    /// Records a finished turn: its messages appended to the session and the turn itself, in
    /// one database transaction. `false` when the turn was recorded before (nothing changes).
    pub async fn record_turn(&self, turn: &TurnRecord<'_>) -> Result<bool, StorageError> {
        let what = || {
            format!(
                "recording the turn of {} for {}",
                turn.twin_id, turn.event_id
            )
        };
        self.try_record_turn(turn)
            .await
            .map_err(|e| StorageError::query(what(), &e))
    }

    async fn try_record_turn(&self, turn: &TurnRecord<'_>) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO turns (twin_id, event_id, room_id, reply, requests, sent, requests_done, \
             created_at) VALUES ($1, $2, $3, $4, $5, 0, 0, $6) \
             ON CONFLICT (twin_id, event_id) DO NOTHING",
        )
        .bind(turn.twin_id.as_str())
        .bind(turn.event_id.as_str())
        .bind(turn.room_id.as_str())
        .bind(turn.reply)
        .bind(turn.requests)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if !turn.messages.is_empty() {
            let count = i64::try_from(turn.messages.len()).unwrap_or(i64::MAX);
            let next: Option<i64> = sqlx::query_scalar(
                "UPDATE sessions SET next_seq = next_seq + $2 WHERE id = $1 RETURNING next_seq",
            )
            .bind(turn.session_id)
            .bind(count)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(next) = next else {
                tx.rollback().await?;
                return Err(sqlx::Error::RowNotFound);
            };
            let mut seq = next - count;
            let now = now_ms();
            for chunk in turn.messages.chunks(500) {
                let sql = format!(
                    "INSERT INTO session_messages (session_id, created_at, seq, message) VALUES {}",
                    values_rows(chunk.len(), &["$1", "$2"], 2, 3)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(turn.session_id)
                    .bind(now);
                for message in chunk {
                    query = query.bind(seq).bind(message.as_str());
                    seq += 1;
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a turn's reply sent.
    pub async fn set_turn_sent(
        &self,
        twin_id: &UserId,
        event_id: &EventId,
    ) -> Result<(), StorageError> {
        self.set_turn_flag("sent", twin_id, event_id).await
    }

    /// Marks a turn's requests carried out.
    pub async fn set_turn_requests_done(
        &self,
        twin_id: &UserId,
        event_id: &EventId,
    ) -> Result<(), StorageError> {
        self.set_turn_flag("requests_done", twin_id, event_id).await
    }

    async fn set_turn_flag(
        &self,
        column: &'static str,
        twin_id: &UserId,
        event_id: &EventId,
    ) -> Result<(), StorageError> {
        // `column` is one of two literals above, never input.
        let sql = format!("UPDATE turns SET {column} = 1 WHERE twin_id = $1 AND event_id = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(twin_id.as_str())
            .bind(event_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("marking the turn for {event_id} {column}"), &e)
            })?;
        Ok(())
    }

    /// Forgets turns recorded more than `older_than_ms` ago; returns how many.
    pub async fn prune_turns(&self, older_than: std::time::Duration) -> Result<u64, StorageError> {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        let done = sqlx::query("DELETE FROM turns WHERE created_at < $1")
            .bind(cutoff)
            .execute(&self.writer)
            .await
            .map_err(|e| StorageError::query("pruning old turns", &e))?;
        Ok(done.rows_affected())
    }
}
