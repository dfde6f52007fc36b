//! Twins and the rooms they are in.

use sqlx::Row;

use ruma::events::room::member::MembershipState;
use ruma::{OwnedUserId, RoomId, UserId};

use super::{StorageError, Store, TwinRow, id_column, now_ms, parse_id};

impl Store {
    /// A twin by MXID.
    pub async fn get_twin(&self, twin_id: &UserId) -> Result<Option<TwinRow>, StorageError> {
        let what = || format!("reading twin {twin_id}");
        let row = sqlx::query(
            "SELECT twin_id, owner_id, registered, display_name FROM twins WHERE twin_id = $1",
        )
        .bind(twin_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        row.map(|row| -> Result<TwinRow, sqlx::Error> {
            Ok(TwinRow {
                twin_id: id_column(&row, 0)?,
                owner_id: id_column(&row, 1)?,
                registered: row.try_get::<i64, _>(2)? != 0,
                display_name: row.try_get(3)?,
            })
        })
        .transpose()
        .map_err(|e| StorageError::query(what(), &e))
    }

    /// Inserts or updates a twin.
    pub async fn upsert_twin(&self, twin: &TwinRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO twins (twin_id, owner_id, registered, display_name, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (twin_id) DO UPDATE SET owner_id = excluded.owner_id, \
             registered = excluded.registered, display_name = excluded.display_name, \
             updated_at = excluded.updated_at",
        )
        .bind(twin.twin_id.as_str())
        .bind(twin.owner_id.as_str())
        .bind(i32::from(twin.registered))
        .bind(twin.display_name.as_deref())
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("saving twin {}", twin.twin_id), &e))?;
        Ok(())
    }

    /// Records a twin's membership (`invite`, `join`, `leave`, `ban`) in a room, replacing the
    /// previous one.
    pub async fn set_membership(
        &self,
        room_id: &RoomId,
        twin_id: &UserId,
        membership: &MembershipState,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO memberships (room_id, twin_id, membership, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, twin_id) DO UPDATE SET membership = excluded.membership, \
             updated_at = excluded.updated_at",
        )
        .bind(room_id.as_str())
        .bind(twin_id.as_str())
        .bind(membership.as_str())
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(
                format_args!("saving membership of {twin_id} in {room_id}"),
                &e,
            )
        })?;
        Ok(())
    }

    /// Twins known in a room with their membership, as `(twin_id, membership)`, by twin id.
    pub async fn room_twins(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<(OwnedUserId, MembershipState)>, StorageError> {
        let what = || format!("reading twins of room {room_id}");
        let rows = sqlx::query_as::<_, (String, String)>(
            "SELECT twin_id, membership FROM memberships WHERE room_id = $1 ORDER BY twin_id",
        )
        .bind(room_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        rows.into_iter()
            .map(|(twin, membership)| Ok((parse_id(0, twin)?, MembershipState::from(membership))))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }
}
