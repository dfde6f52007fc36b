//! Portals: rooms a trusted bridge bot marked with `m.bridge` (see [`crate::bridge::portal`]).

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use sqlx::Row;

use super::{StorageError, Store, id_column, now_ms};
use crate::bridge::{Portal, PortalKind};

impl Store {
    /// Records (or replaces) what the bot said about `room`; the service members it named
    /// before are kept.
    pub async fn set_portal(&self, room: &RoomId, portal: &Portal) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO portals \
             (room_id, bot, network, network_name, kind, chat_name, receiver, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (room_id) DO UPDATE SET bot = excluded.bot, \
             network = excluded.network, network_name = excluded.network_name, \
             kind = excluded.kind, chat_name = excluded.chat_name, \
             receiver = excluded.receiver, updated_at = excluded.updated_at",
        )
        .bind(room.as_str())
        .bind(portal.bot.as_str())
        .bind(portal.network.as_str())
        .bind(portal.network_name.as_str())
        .bind(portal.kind.as_str())
        .bind(portal.chat_name.as_deref())
        .bind(portal.receiver.as_deref())
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("recording the portal {room}"), &e))?;
        Ok(())
    }

    /// Records the service members of a known portal (nothing for another room).
    pub async fn set_portal_service_members(
        &self,
        room: &RoomId,
        members: &[OwnedUserId],
    ) -> Result<(), StorageError> {
        let json = serde_json::to_string(members)
            .map_err(|e| StorageError::Database(format!("service members of {room}: {e}")))?;
        sqlx::query("UPDATE portals SET service_members = $2, updated_at = $3 WHERE room_id = $1")
            .bind(room.as_str())
            .bind(json)
            .bind(now_ms())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("recording service members of {room}"), &e)
            })?;
        Ok(())
    }

    /// The portal `room` is, when a trusted bot said so.
    pub async fn portal(&self, room: &RoomId) -> Result<Option<Portal>, StorageError> {
        let row = sqlx::query(
            "SELECT bot, network, network_name, kind, chat_name, receiver, service_members \
             FROM portals WHERE room_id = $1",
        )
        .bind(room.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading the portal {room}"), &e))?;
        row.map(|row| portal_row(&row))
            .transpose()
            .map_err(|e| StorageError::query(format_args!("reading the portal {room}"), &e))
    }

    /// The portals `twin` is joined to, with their rooms.
    pub async fn portals_of(
        &self,
        twin: &UserId,
    ) -> Result<Vec<(OwnedRoomId, Portal)>, StorageError> {
        let rows = sqlx::query(
            "SELECT p.bot, p.network, p.network_name, p.kind, p.chat_name, p.receiver, \
             p.service_members, p.room_id FROM portals p JOIN memberships m \
             ON m.room_id = p.room_id WHERE m.twin_id = $1 AND m.membership = 'join' \
             ORDER BY p.room_id",
        )
        .bind(twin.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading the portals of {twin}"), &e))?;
        rows.iter()
            .map(|row| Ok((id_column(row, 7)?, portal_row(row)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| StorageError::query(format_args!("reading the portals of {twin}"), &e))
    }
}

fn portal_row(row: &sqlx::any::AnyRow) -> Result<Portal, sqlx::Error> {
    let members: String = row.try_get(6)?;
    let service_members: Vec<OwnedUserId> =
        serde_json::from_str(&members).map_err(|e| sqlx::Error::ColumnDecode {
            index: "6".to_owned(),
            source: Box::new(e),
        })?;
    let kind: String = row.try_get(3)?;
    Ok(Portal {
        bot: id_column(row, 0)?,
        network: row.try_get(1)?,
        network_name: row.try_get(2)?,
        kind: PortalKind::parse(&kind),
        chat_name: row.try_get(4)?,
        receiver: row.try_get(5)?,
        service_members,
    })
}
