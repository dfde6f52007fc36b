//! Actions held for the owner's decision: risky tool calls (`!ai approve <n>`) and proposed
//! policy changes (`!ai confirm <n>`), numbered per twin.

use sqlx::{AssertSqlSafe, Row};

use ruma::{OwnedRoomId, RoomId, UserId};

use super::{StorageError, Store, id_column, now_ms};

/// Attempts when a concurrent hold of the same twin took the next number.
const NUMBER_ATTEMPTS: usize = 5;

/// What kind of decision a held action waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldKind {
    /// A tool call (`!ai approve`).
    Tool,
    /// A policy change (`!ai confirm`).
    Policy,
}

impl HeldKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Policy => "policy",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "policy" {
            Self::Policy
        } else {
            Self::Tool
        }
    }
}

/// A held action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRow {
    /// Its number for the owner.
    pub number: i64,
    /// The room of the turn that asked for it.
    pub room_id: OwnedRoomId,
    /// What it waits for.
    pub kind: HeldKind,
    /// The request, as JSON ([`crate::kernel::ToolRequest`]).
    pub payload: String,
    /// One line for the owner.
    pub summary: String,
    /// `pending`, `approved`, `denied`.
    pub state: String,
    /// When it was held (ms since the epoch).
    pub created_at: i64,
    /// The event of the command that decided it, when one did.
    pub decided_by: Option<String>,
}

/// A new held action.
#[derive(Debug, Clone, Copy)]
pub struct NewHeld<'a> {
    /// The twin.
    pub twin_id: &'a UserId,
    /// What caused it, unique per twin (the turn's event and the request's place).
    pub cause: &'a str,
    /// The room of the turn.
    pub room_id: &'a RoomId,
    /// What it waits for.
    pub kind: HeldKind,
    /// The request, as JSON.
    pub payload: &'a str,
    /// One line for the owner.
    pub summary: &'a str,
}

const COLUMNS: &str = "number, room_id, kind, payload, summary, state, created_at, decided_by";

fn held_row(row: &sqlx::any::AnyRow) -> Result<HeldRow, sqlx::Error> {
    Ok(HeldRow {
        number: row.try_get(0)?,
        room_id: id_column(row, 1)?,
        kind: HeldKind::parse(&row.try_get::<String, _>(2)?),
        payload: row.try_get(3)?,
        summary: row.try_get(4)?,
        state: row.try_get(5)?,
        created_at: row.try_get(6)?,
        decided_by: row.try_get(7)?,
    })
}

impl Store {
    /// Records a held action and returns it; recording the same cause again returns the one
    /// recorded first (its number unchanged).
    pub async fn hold_action(&self, held: &NewHeld<'_>) -> Result<HeldRow, StorageError> {
        let what = || format!("holding an action of {}", held.twin_id);
        for _ in 0..NUMBER_ATTEMPTS {
            if let Some(row) = self.held_by_cause(held.twin_id, held.cause).await? {
                return Ok(row);
            }
            // A conflict on the number (a concurrent hold) or on the cause inserts nothing;
            // the loop then reads the cause again.
            sqlx::query(
                "INSERT INTO held_actions \
                 (twin_id, number, cause, room_id, kind, payload, summary, state, created_at) \
                 SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3, $4, $5, $6, 'pending', $7 \
                 FROM held_actions WHERE twin_id = $1 ON CONFLICT DO NOTHING",
            )
            .bind(held.twin_id.as_str())
            .bind(held.cause)
            .bind(held.room_id.as_str())
            .bind(held.kind.as_str())
            .bind(held.payload)
            .bind(held.summary)
            .bind(now_ms())
            .execute(&self.writer)
            .await
            .map_err(|e| StorageError::query(what(), &e))?;
        }
        self.held_by_cause(held.twin_id, held.cause)
            .await?
            .ok_or_else(|| StorageError::Database(format!("{}: kept racing", what())))
    }

    async fn held_by_cause(
        &self,
        twin_id: &UserId,
        cause: &str,
    ) -> Result<Option<HeldRow>, StorageError> {
        let what = || format!("reading a held action of {twin_id}");
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM held_actions WHERE twin_id = $1 AND cause = $2"
        )))
        .bind(twin_id.as_str())
        .bind(cause)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        row.map(|row| held_row(&row))
            .transpose()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Held action `number` of `twin_id`.
    pub async fn held_action(
        &self,
        twin_id: &UserId,
        number: i64,
    ) -> Result<Option<HeldRow>, StorageError> {
        let what = || format!("reading held action {number} of {twin_id}");
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM held_actions WHERE twin_id = $1 AND number = $2"
        )))
        .bind(twin_id.as_str())
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        row.map(|row| held_row(&row))
            .transpose()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// The pending actions of `twin_id` of `kind`, oldest first.
    pub async fn pending_held(
        &self,
        twin_id: &UserId,
        kind: HeldKind,
    ) -> Result<Vec<HeldRow>, StorageError> {
        let what = || format!("reading pending actions of {twin_id}");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM held_actions WHERE twin_id = $1 AND kind = $2 \
             AND state = 'pending' ORDER BY number"
        )))
        .bind(twin_id.as_str())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(held_row)
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Moves held action `number` from pending to `approved`, as the command `event` said;
    /// `true` also when that same command approved it before (a replay after a crash, which
    /// must finish what it started), `false` when it was decided otherwise.
    pub async fn approve_held(
        &self,
        twin_id: &UserId,
        number: i64,
        event: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE held_actions SET state = 'approved', decided_by = $3 \
             WHERE twin_id = $1 AND number = $2 \
             AND (state = 'pending' OR (state = 'approved' AND decided_by = $3))",
        )
        .bind(twin_id.as_str())
        .bind(number)
        .bind(event)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(
                format_args!("approving held action {number} of {twin_id}"),
                &e,
            )
        })?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves held action `number` from pending to `state` (`approved` or `denied`); `false`
    /// when it was no longer pending (decided before: it never runs twice).
    pub async fn decide_held(
        &self,
        twin_id: &UserId,
        number: i64,
        state: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE held_actions SET state = $3 WHERE twin_id = $1 AND number = $2 \
             AND state = 'pending'",
        )
        .bind(twin_id.as_str())
        .bind(number)
        .bind(state)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(
                format_args!("deciding held action {number} of {twin_id}"),
                &e,
            )
        })?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn held_actions_are_numbered_per_twin_once_per_cause_and_decided_once() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let twin = ruma::user_id!("@a_ai:x");
        let other = ruma::user_id!("@b_ai:x");
        let room = ruma::room_id!("!r:x");
        let held = |twin, cause| NewHeld {
            twin_id: twin,
            cause,
            room_id: room,
            kind: HeldKind::Tool,
            payload: "{}",
            summary: "read the file \"x\"",
        };
        let first = store.hold_action(&held(twin, "$e:0")).await.unwrap();
        let second = store.hold_action(&held(twin, "$e:1")).await.unwrap();
        let again = store.hold_action(&held(twin, "$e:0")).await.unwrap();
        let theirs = store.hold_action(&held(other, "$e:0")).await.unwrap();
        assert_eq!((first.number, second.number, again.number), (1, 2, 1));
        assert_eq!(theirs.number, 1);
        assert_eq!(
            store
                .pending_held(twin, HeldKind::Tool)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(
            store
                .pending_held(twin, HeldKind::Policy)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.approve_held(twin, 1, "$approve").await.unwrap());
        assert!(
            store.approve_held(twin, 1, "$approve").await.unwrap(),
            "the same command again (a replay) finishes it"
        );
        assert!(!store.approve_held(twin, 1, "$other").await.unwrap());
        assert!(!store.decide_held(twin, 1, "denied").await.unwrap());
        assert!(store.decide_held(twin, 2, "denied").await.unwrap());
        assert!(!store.approve_held(twin, 2, "$approve").await.unwrap());
        assert!(!store.decide_held(twin, 9, "denied").await.unwrap());
        let row = store.held_action(twin, 1).await.unwrap().unwrap();
        assert_eq!(row.state, "approved");
        assert_eq!(row.decided_by.as_deref(), Some("$approve"));
        assert_eq!(row.room_id, room);
    }
}
