//! Twins that cannot act (shown in `/health` and `doctor`), and notices for owners that wait
//! for a usable DM.

use sqlx::Row;

use ruma::{OwnedUserId, UserId};

use super::{StorageError, Store, id_column, now_ms};

/// A twin that cannot act, with what the homeserver said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinProblem {
    /// The twin.
    pub twin_id: OwnedUserId,
    /// What went wrong, as the homeserver said it (no message text, no token).
    pub problem: String,
    /// Since when, Unix milliseconds.
    pub since_ms: i64,
}

/// A notice for an owner that could not be delivered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNotice {
    /// Stable key (the notice is delivered once per key).
    pub key: String,
    /// The notice, in Markdown.
    pub body: String,
}

impl Store {
    /// Records that `twin_id` cannot act (the first time's `since` is kept).
    pub async fn set_twin_problem(
        &self,
        twin_id: &UserId,
        problem: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO twin_problems (twin_id, problem, since_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (twin_id) DO UPDATE SET problem = excluded.problem",
        )
        .bind(twin_id.as_str())
        .bind(problem)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| StorageError::query(format_args!("recording a problem of {twin_id}"), &e))?;
        Ok(())
    }

    /// Forgets `twin_id`'s problem (it can act again).
    pub async fn clear_twin_problem(&self, twin_id: &UserId) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM twin_problems WHERE twin_id = $1")
            .bind(twin_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("clearing the problem of {twin_id}"), &e)
            })?;
        Ok(())
    }

    /// Twins that cannot act, oldest problem first.
    pub async fn twin_problems(&self) -> Result<Vec<TwinProblem>, StorageError> {
        let rows =
            sqlx::query("SELECT twin_id, problem, since_ms FROM twin_problems ORDER BY since_ms")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| StorageError::query("reading twins that cannot act", &e))?;
        rows.iter()
            .map(|row| -> Result<TwinProblem, sqlx::Error> {
                Ok(TwinProblem {
                    twin_id: id_column(row, 0)?,
                    problem: row.try_get(1)?,
                    since_ms: row.try_get(2)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::query("reading twins that cannot act", &e))
    }

    /// Keeps a notice for `twin_id`'s owner until it can be delivered (a repeat of `key` is a
    /// no-op).
    pub async fn add_owner_notice(
        &self,
        twin_id: &UserId,
        key: &str,
        body: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO owner_notices (twin_id, notice_key, body, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (twin_id, notice_key) DO NOTHING",
        )
        .bind(twin_id.as_str())
        .bind(key)
        .bind(body)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("keeping a notice for {twin_id}'s owner"), &e)
        })?;
        Ok(())
    }

    /// Notices waiting for `twin_id`'s owner, oldest first.
    pub async fn owner_notices(
        &self,
        twin_id: &UserId,
    ) -> Result<Vec<PendingNotice>, StorageError> {
        let rows = sqlx::query(
            "SELECT notice_key, body FROM owner_notices WHERE twin_id = $1 ORDER BY created_at",
        )
        .bind(twin_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("reading notices for {twin_id}'s owner"), &e)
        })?;
        rows.iter()
            .map(|row| -> Result<PendingNotice, sqlx::Error> {
                Ok(PendingNotice {
                    key: row.try_get(0)?,
                    body: row.try_get(1)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| {
                StorageError::query(format_args!("reading notices for {twin_id}'s owner"), &e)
            })
    }

    /// Forgets a delivered notice.
    pub async fn remove_owner_notice(
        &self,
        twin_id: &UserId,
        key: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM owner_notices WHERE twin_id = $1 AND notice_key = $2")
            .bind(twin_id.as_str())
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(|e| {
                StorageError::query(format_args!("removing a notice for {twin_id}'s owner"), &e)
            })?;
        Ok(())
    }
}
