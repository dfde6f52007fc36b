//! What group rooms need kept: who is in a room (and their names), recent messages, the events
//! twins sent (replies and threads address them), and strangers' pairing requests.

use sqlx::Row;

use ruma::events::room::member::MembershipState;
use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{StorageError, Store, id_column, now_ms, parse_id};

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's MXID.
    pub user_id: OwnedUserId,
    /// Their membership.
    pub membership: MembershipState,
    /// Display name in the room, when set.
    pub display_name: Option<String>,
}

/// A message seen in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Event id.
    pub event_id: OwnedEventId,
    /// Author.
    pub sender: OwnedUserId,
    /// Plain text body.
    pub body: String,
    /// When it was recorded, Unix milliseconds.
    pub ts: i64,
}

/// A stranger's request to talk with a twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRow {
    /// The twin asked.
    pub twin_id: OwnedUserId,
    /// Who asks.
    pub requester: OwnedUserId,
    /// The room they asked in.
    pub room_id: OwnedRoomId,
    /// Their first message (answered once approved).
    pub event_id: OwnedEventId,
    /// What it said.
    pub body: String,
    /// `pending`, `approved`, `denied`.
    pub status: String,
}

impl Store {
    /// Records `user_id`'s membership in a room, keeping the known display name when `None`.
    pub async fn set_room_member(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        membership: &MembershipState,
        display_name: Option<&str>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, membership, display_name, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership, \
             display_name = COALESCE(excluded.display_name, room_members.display_name), \
             updated_at = excluded.updated_at",
        )
        .bind(room_id.as_str())
        .bind(user_id.as_str())
        .bind(membership.as_str())
        .bind(display_name)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("saving member {user_id} of {room_id}"), &e)
        })?;
        Ok(())
    }

    /// Members of a room with membership `join` or `invite`, by MXID.
    pub async fn room_members(&self, room_id: &RoomId) -> Result<Vec<MemberRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT user_id, membership, display_name FROM room_members \
             WHERE room_id = $1 AND membership IN ('join', 'invite') ORDER BY user_id",
        )
        .bind(room_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading members of {room_id}"), &e))?;
        rows.iter()
            .map(|row| {
                Ok(MemberRow {
                    user_id: id_column(row, 0)?,
                    membership: MembershipState::from(row.try_get::<String, _>(1)?),
                    display_name: row.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(format_args!("reading members of {room_id}"), &e))
    }

    /// When the service last saw `user_id`'s member event in `room_id` while they are joined
    /// (their join, or a later change of name), ms since the epoch; `None` when it never saw
    /// them join (they were there before the twin).
    pub async fn joined_since(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<i64>, StorageError> {
        sqlx::query_scalar(
            "SELECT updated_at FROM room_members WHERE room_id = $1 AND user_id = $2 \
             AND membership = 'join'",
        )
        .bind(room_id.as_str())
        .bind(user_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading a member of {room_id}"), &e))
    }

    /// Whether the members of a room were ever recorded.
    pub async fn room_members_known(&self, room_id: &RoomId) -> Result<bool, StorageError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_members WHERE room_id = $1")
            .bind(room_id.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StorageError::query(format_args!("counting members of {room_id}"), &e))?;
        Ok(count > 0)
    }

    /// Rooms where exactly `twin_id` and `owner_id` are joined (or invited): the owner's DMs
    /// with the twin, most recently changed first.
    pub async fn owner_dms(
        &self,
        twin_id: &UserId,
        owner_id: &UserId,
    ) -> Result<Vec<OwnedRoomId>, StorageError> {
        let what = || format!("finding DMs of {twin_id}");
        let rooms = sqlx::query_scalar::<_, String>(
            "SELECT m.room_id FROM room_members m \
             WHERE m.user_id = $1 AND m.membership = 'join' \
             AND EXISTS (SELECT 1 FROM room_members o WHERE o.room_id = m.room_id \
                         AND o.user_id = $2 AND o.membership IN ('join', 'invite')) \
             AND (SELECT COUNT(*) FROM room_members c WHERE c.room_id = m.room_id \
                  AND c.membership IN ('join', 'invite')) = 2 \
             ORDER BY m.updated_at DESC",
        )
        .bind(twin_id.as_str())
        .bind(owner_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        parse_ids(rooms).map_err(|e| StorageError::query(what(), &e))
    }

    /// Whether exactly `twin_id` (joined) and `owner_id` (joined or invited) are in `room_id`:
    /// one of [`Store::owner_dms`], checked for one room only.
    pub async fn is_two_member_dm(
        &self,
        twin_id: &UserId,
        owner_id: &UserId,
        room_id: &RoomId,
    ) -> Result<bool, StorageError> {
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM room_members m WHERE m.room_id = $3 AND m.user_id = $1 \
             AND m.membership = 'join' \
             AND EXISTS (SELECT 1 FROM room_members o WHERE o.room_id = $3 \
                         AND o.user_id = $2 AND o.membership IN ('join', 'invite')) \
             AND (SELECT COUNT(*) FROM room_members c WHERE c.room_id = $3 \
                  AND c.membership IN ('join', 'invite')) = 2",
        )
        .bind(twin_id.as_str())
        .bind(owner_id.as_str())
        .bind(room_id.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("checking the DM {room_id} of {twin_id}"), &e)
        })?;
        Ok(found > 0)
    }

    /// The room `twin_id` tells its owner things in, when one is bound.
    pub async fn owner_dm(&self, twin_id: &UserId) -> Result<Option<OwnedRoomId>, StorageError> {
        let what = || format!("reading the owner DM of {twin_id}");
        let room =
            sqlx::query_scalar::<_, String>("SELECT room_id FROM owner_dm WHERE twin_id = $1")
                .bind(twin_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| StorageError::query(what(), &e))?;
        room.map(|room| parse_id(0, room))
            .transpose()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Binds the room `twin_id` tells its owner things in (replacing any earlier one).
    pub async fn set_owner_dm(
        &self,
        twin_id: &UserId,
        room_id: &RoomId,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO owner_dm (twin_id, room_id, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (twin_id) DO UPDATE SET room_id = excluded.room_id, \
             updated_at = excluded.updated_at",
        )
        .bind(twin_id.as_str())
        .bind(room_id.as_str())
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("binding the owner DM of {twin_id}"), &e))?;
        Ok(())
    }

    /// Unbinds the owner DM of `twin_id` if it is still `room_id` (it became unusable).
    pub async fn clear_owner_dm(
        &self,
        twin_id: &UserId,
        room_id: &RoomId,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM owner_dm WHERE twin_id = $1 AND room_id = $2")
            .bind(twin_id.as_str())
            .bind(room_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("unbinding the owner DM of {twin_id}"), &e)
            })?;
        Ok(())
    }

    /// Logs a text message of a room (a repeat is a no-op) and keeps only the newest `keep`.
    pub async fn log_message(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        body: &str,
        keep: i64,
    ) -> Result<(), StorageError> {
        let err = |e: sqlx::Error| {
            StorageError::query(format_args!("logging message {event_id} of {room_id}"), &e)
        };
        // One commit for both: one fsync, one turn at the writer.
        let mut tx = self.begin_write().await.map_err(err)?;
        sqlx::query(
            "INSERT INTO room_log (room_id, event_id, sender, body, ts) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id, event_id) DO NOTHING",
        )
        .bind(room_id.as_str())
        .bind(event_id.as_str())
        .bind(sender.as_str())
        .bind(body)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        sqlx::query(
            "DELETE FROM room_log WHERE room_id = $1 AND id <= \
             (SELECT id FROM room_log WHERE room_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(room_id.as_str())
        .bind(keep)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(())
    }

    /// Up to `limit` messages of a room logged before `event_id` (all, when it is not logged),
    /// oldest first.
    pub async fn recent_log(
        &self,
        room_id: &RoomId,
        before_event: &EventId,
        limit: i64,
    ) -> Result<Vec<LogRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT event_id, sender, body, ts FROM room_log WHERE room_id = $1 AND id < \
             COALESCE((SELECT id FROM room_log WHERE room_id = $1 AND event_id = $2), \
                      9223372036854775807) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(room_id.as_str())
        .bind(before_event.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading the log of {room_id}"), &e))?;
        let mut log = rows
            .iter()
            .map(|row| {
                Ok(LogRow {
                    event_id: id_column(row, 0)?,
                    sender: id_column(row, 1)?,
                    body: row.try_get(2)?,
                    ts: row.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| StorageError::query(format_args!("reading the log of {room_id}"), &e))?;
        log.reverse();
        Ok(log)
    }

    /// Records an event a twin sent, with the thread it is in (a repeat is a no-op).
    pub async fn add_twin_event(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        twin_id: &UserId,
        thread_root: Option<&EventId>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO twin_events (room_id, event_id, twin_id, thread_root) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (room_id, event_id) DO NOTHING",
        )
        .bind(room_id.as_str())
        .bind(event_id.as_str())
        .bind(twin_id.as_str())
        .bind(thread_root.map(EventId::as_str))
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("recording event {event_id}"), &e))?;
        Ok(())
    }

    /// The twin that sent `event_id`, if a twin did.
    pub async fn twin_of_event(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<Option<OwnedUserId>, StorageError> {
        let what = || format!("looking up event {event_id}");
        let twin = sqlx::query_scalar::<_, String>(
            "SELECT twin_id FROM twin_events WHERE room_id = $1 AND event_id = $2",
        )
        .bind(room_id.as_str())
        .bind(event_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        twin.map(|twin| parse_id(0, twin))
            .transpose()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Twins that took part in the thread rooted at `root` (sent the root or a message in it).
    pub async fn twins_in_thread(
        &self,
        room_id: &RoomId,
        root: &EventId,
    ) -> Result<Vec<OwnedUserId>, StorageError> {
        let what = || format!("reading thread {root}");
        let twins = sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT twin_id FROM twin_events WHERE room_id = $1 \
             AND (thread_root = $2 OR event_id = $2) ORDER BY twin_id",
        )
        .bind(room_id.as_str())
        .bind(root.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        parse_ids(twins).map_err(|e| StorageError::query(what(), &e))
    }

    /// Records a pending pairing request; returns `false` when one already exists for this
    /// twin and requester (whatever its status), leaving it unchanged.
    pub async fn add_pairing(&self, pairing: &PairingRow) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO pairings \
             (twin_id, requester, room_id, event_id, body, status, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (twin_id, requester) DO NOTHING",
        )
        .bind(pairing.twin_id.as_str())
        .bind(pairing.requester.as_str())
        .bind(pairing.room_id.as_str())
        .bind(pairing.event_id.as_str())
        .bind(&pairing.body)
        .bind(&pairing.status)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("saving pairing of {}", pairing.requester), &e)
        })?;
        Ok(done.rows_affected() > 0)
    }

    /// The pairing request of `requester` to `twin_id`.
    pub async fn pairing(
        &self,
        twin_id: &UserId,
        requester: &UserId,
    ) -> Result<Option<PairingRow>, StorageError> {
        let row = sqlx::query(
            "SELECT twin_id, requester, room_id, event_id, body, status FROM pairings \
             WHERE twin_id = $1 AND requester = $2",
        )
        .bind(twin_id.as_str())
        .bind(requester.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(format_args!("reading pairing of {requester}"), &e))?;
        row.map(|row| {
            Ok(PairingRow {
                twin_id: id_column(&row, 0)?,
                requester: id_column(&row, 1)?,
                room_id: id_column(&row, 2)?,
                event_id: id_column(&row, 3)?,
                body: row.try_get(4)?,
                status: row.try_get(5)?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| {
            StorageError::query(format_args!("reading pairing of {requester}"), &e)
        })
    }

    /// Sets the status of a pairing request (`approved`, `denied`); `false` when there is none.
    pub async fn set_pairing_status(
        &self,
        twin_id: &UserId,
        requester: &UserId,
        status: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE pairings SET status = $3, updated_at = $4 \
             WHERE twin_id = $1 AND requester = $2",
        )
        .bind(twin_id.as_str())
        .bind(requester.as_str())
        .bind(status)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("updating pairing of {requester}"), &e))?;
        Ok(done.rows_affected() > 0)
    }
}

/// Parses a column of IDs read with `query_scalar`.
fn parse_ids<T>(texts: Vec<String>) -> Result<Vec<T>, sqlx::Error>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    texts.into_iter().map(|text| parse_id(0, text)).collect()
}
