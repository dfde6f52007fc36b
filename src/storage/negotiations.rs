//! AI-to-AI negotiations: each twin's side, persisted after every step, and the room each twin
//! shares with another twin.

use sqlx::Row;

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{StorageError, Store, id_column, id_column_opt, now_ms, parse_id};

/// One twin's side of a negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationRow {
    /// The twin.
    pub twin_id: OwnedUserId,
    /// The negotiation id (shared by both sides).
    pub id: String,
    /// The other twin, once known.
    pub peer_twin: Option<OwnedUserId>,
    /// The room of the negotiation, once known.
    pub room_id: Option<OwnedRoomId>,
    /// The state machine, as JSON.
    pub state: String,
    /// When it times out, Unix milliseconds.
    pub deadline_ms: Option<i64>,
    /// Whether it ended.
    pub finished: bool,
}

fn row_of(row: &sqlx::any::AnyRow) -> Result<NegotiationRow, sqlx::Error> {
    Ok(NegotiationRow {
        twin_id: id_column(row, 0)?,
        id: row.try_get(1)?,
        peer_twin: id_column_opt(row, 2)?,
        room_id: id_column_opt(row, 3)?,
        state: row.try_get(4)?,
        deadline_ms: row.try_get(5)?,
        finished: row.try_get::<i32, _>(6)? == 1,
    })
}

/// Reads the columns `row_of` expects.
macro_rules! select_negotiations {
    ($where:literal) => {
        concat!(
            "SELECT twin_id, id, peer_twin, room_id, state, deadline_ms, finished \
             FROM negotiations ",
            $where
        )
    };
}

impl Store {
    /// Saves a negotiation (insert or replace).
    pub async fn save_negotiation(&self, row: &NegotiationRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO negotiations \
             (twin_id, id, peer_twin, room_id, state, deadline_ms, finished, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (twin_id, id) DO UPDATE SET peer_twin = excluded.peer_twin, \
             room_id = excluded.room_id, state = excluded.state, \
             deadline_ms = excluded.deadline_ms, finished = excluded.finished, \
             updated_at = excluded.updated_at, tick_failures = 0",
        )
        .bind(row.twin_id.as_str())
        .bind(&row.id)
        .bind(row.peer_twin.as_ref().map(|twin| twin.as_str()))
        .bind(row.room_id.as_ref().map(|room| room.as_str()))
        .bind(&row.state)
        .bind(row.deadline_ms)
        .bind(i32::from(row.finished))
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("saving negotiation {}", row.id), &e))?;
        Ok(())
    }

    /// A twin's side of a negotiation.
    pub async fn negotiation(
        &self,
        twin_id: &UserId,
        id: &str,
    ) -> Result<Option<NegotiationRow>, StorageError> {
        let row = sqlx::query(select_negotiations!("WHERE twin_id = $1 AND id = $2"))
            .bind(twin_id.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StorageError::query(format_args!("reading negotiation {id}"), &e))?;
        row.as_ref()
            .map(row_of)
            .transpose()
            .map_err(|e| StorageError::query(format_args!("reading negotiation {id}"), &e))
    }

    /// Unfinished negotiations whose deadline passed at `now_ms`, leaving out those whose tick
    /// failed `max_failures` times in a row.
    pub async fn negotiations_due(
        &self,
        now: i64,
        max_failures: i64,
    ) -> Result<Vec<NegotiationRow>, StorageError> {
        let rows = sqlx::query(select_negotiations!(
            "WHERE finished = 0 AND deadline_ms IS NOT NULL AND deadline_ms <= $1 \
             AND tick_failures < $2 ORDER BY deadline_ms"
        ))
        .bind(now)
        .bind(max_failures)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query("reading due negotiations", &e))?;
        rows.iter()
            .map(row_of)
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::query("reading due negotiations", &e))
    }

    /// Counts a failed tick of a negotiation; returns the failures in a row so far.
    pub async fn add_tick_failure(&self, twin_id: &UserId, id: &str) -> Result<i64, StorageError> {
        sqlx::query_scalar::<_, i64>(
            "UPDATE negotiations SET tick_failures = tick_failures + 1 \
             WHERE twin_id = $1 AND id = $2 RETURNING tick_failures",
        )
        .bind(twin_id.as_str())
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map(Option::unwrap_or_default)
        .map_err(|e| StorageError::query(format_args!("counting a failed tick of {id}"), &e))
    }

    /// A twin's unfinished negotiations, newest first.
    pub async fn open_negotiations(
        &self,
        twin_id: &UserId,
    ) -> Result<Vec<NegotiationRow>, StorageError> {
        let rows = sqlx::query(select_negotiations!(
            "WHERE twin_id = $1 AND finished = 0 ORDER BY updated_at DESC"
        ))
        .bind(twin_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading negotiations of {twin_id}"), &e))?;
        rows.iter()
            .map(row_of)
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::query(format_args!("reading negotiations of {twin_id}"), &e))
    }

    /// The room `twin_id` shares with `peer_twin`.
    pub async fn a2a_room(
        &self,
        twin_id: &UserId,
        peer_twin: &UserId,
    ) -> Result<Option<OwnedRoomId>, StorageError> {
        let what = || format!("reading the room with {peer_twin}");
        let room = sqlx::query_scalar::<_, String>(
            "SELECT room_id FROM a2a_rooms WHERE twin_id = $1 AND peer_twin = $2",
        )
        .bind(twin_id.as_str())
        .bind(peer_twin.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        room.map(|room| parse_id(0, room))
            .transpose()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Records the room `twin_id` shares with `peer_twin`.
    pub async fn set_a2a_room(
        &self,
        twin_id: &UserId,
        peer_twin: &UserId,
        room_id: &RoomId,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO a2a_rooms (twin_id, peer_twin, room_id, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (twin_id, peer_twin) DO UPDATE SET \
             room_id = excluded.room_id, updated_at = excluded.updated_at",
        )
        .bind(twin_id.as_str())
        .bind(peer_twin.as_str())
        .bind(room_id.as_str())
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("saving the room with {peer_twin}"), &e))?;
        Ok(())
    }
}
