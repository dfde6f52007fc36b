//! Room sessions and their messages.

use sqlx::{AssertSqlSafe, Row};

use ruma::{RoomId, UserId};

use super::{SessionRow, StorageError, Store, id_column, is_unique_violation, now_ms, values_rows};

/// Messages per multi-row `INSERT` (two placeholders each, plus two shared).
const MESSAGE_CHUNK: usize = 500;
/// Attempts when a concurrent writer wins a race for the current session.
const SESSION_ATTEMPTS: usize = 5;

const SELECT_CURRENT: &str = "SELECT id, room_id, twin_id FROM sessions \
     WHERE room_id = $1 AND twin_id = $2 AND audience = $3 AND is_current = 1";
const INSERT_CURRENT: &str = "INSERT INTO sessions \
     (room_id, twin_id, is_current, next_seq, created_at, audience) \
     VALUES ($1, $2, 1, 0, $3, $4) \
     ON CONFLICT (room_id, twin_id, audience) WHERE is_current = 1 DO NOTHING \
     RETURNING id, room_id, twin_id";

/// Whose conversation a session is: the owner's and everyone else's are kept apart, so that
/// nothing the owner said reaches a public turn's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAudience {
    /// The owner's turns.
    Owner,
    /// Everyone else's turns.
    Public,
}

impl SessionAudience {
    /// Both audiences.
    pub const ALL: [Self; 2] = [Self::Owner, Self::Public];

    fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Public => "public",
        }
    }
}

fn session_row(row: &sqlx::any::AnyRow) -> Result<SessionRow, sqlx::Error> {
    Ok(SessionRow {
        id: row.try_get(0)?,
        room_id: id_column(row, 1)?,
        twin_id: id_column(row, 2)?,
    })
}

impl Store {
    /// The current session of a twin in a room for `audience`, created when missing.
    pub async fn current_session(
        &self,
        room_id: &RoomId,
        twin_id: &UserId,
        audience: SessionAudience,
    ) -> Result<SessionRow, StorageError> {
        let what = || format!("finding the session of {twin_id} in {room_id}");
        for _ in 0..SESSION_ATTEMPTS {
            let found = sqlx::query(SELECT_CURRENT)
                .bind(room_id.as_str())
                .bind(twin_id.as_str())
                .bind(audience.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| StorageError::query(what(), &e))?;
            if let Some(row) = found {
                return session_row(&row).map_err(|e| StorageError::query(what(), &e));
            }
            // Missing: create it, unless someone else just did (then read theirs).
            let created = sqlx::query(INSERT_CURRENT)
                .bind(room_id.as_str())
                .bind(twin_id.as_str())
                .bind(now_ms())
                .bind(audience.as_str())
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| StorageError::query(what(), &e))?;
            if let Some(row) = created {
                return session_row(&row).map_err(|e| StorageError::query(what(), &e));
            }
        }
        Err(StorageError::Database(format!(
            "{}: the current session kept changing under concurrent writers",
            what()
        )))
    }

    /// Starts a new session, which becomes the current one (e.g. after a reset). The previous
    /// session and its messages stay stored.
    pub async fn new_session(
        &self,
        room_id: &RoomId,
        twin_id: &UserId,
        audience: SessionAudience,
    ) -> Result<SessionRow, StorageError> {
        let what = || format!("starting a new session of {twin_id} in {room_id}");
        let mut last = None;
        for _ in 0..SESSION_ATTEMPTS {
            match self.try_new_session(room_id, twin_id, audience).await {
                Ok(Some(row)) => return Ok(row),
                // A concurrent new_session made its session current after our update.
                Ok(None) => {}
                // PostgreSQL: a concurrent new_session committed between our update and insert.
                Err(e) if is_unique_violation(&e) => last = Some(e),
                Err(e) => return Err(StorageError::query(what(), &e)),
            }
        }
        Err(match last {
            Some(e) => StorageError::query(what(), &e),
            None => StorageError::Database(format!(
                "{}: the current session kept changing under concurrent writers",
                what()
            )),
        })
    }

    /// `None` when a concurrent writer got in between: try again.
    async fn try_new_session(
        &self,
        room_id: &RoomId,
        twin_id: &UserId,
        audience: SessionAudience,
    ) -> Result<Option<SessionRow>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE sessions SET is_current = 0 WHERE room_id = $1 AND twin_id = $2 \
             AND audience = $3 AND is_current = 1",
        )
        .bind(room_id.as_str())
        .bind(twin_id.as_str())
        .bind(audience.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(INSERT_CURRENT)
            .bind(room_id.as_str())
            .bind(twin_id.as_str())
            .bind(now_ms())
            .bind(audience.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let session = session_row(&row)?;
        tx.commit().await?;
        Ok(Some(session))
    }

    /// Appends messages (JSON text) to a session, in order, after the ones already there.
    pub async fn append_messages(
        &self,
        session_id: i64,
        messages: &[String],
    ) -> Result<(), StorageError> {
        if messages.is_empty() {
            return Ok(());
        }
        let what = || {
            format!(
                "appending {} messages to session {session_id}",
                messages.len()
            )
        };
        match self.try_append_messages(session_id, messages).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(StorageError::NotFound(format!("session {session_id}"))),
            Err(e) => Err(StorageError::query(what(), &e)),
        }
    }

    /// `false` when the session does not exist.
    async fn try_append_messages(
        &self,
        session_id: i64,
        messages: &[String],
    ) -> Result<bool, sqlx::Error> {
        let count = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;
        // Reserving the sequence numbers also locks the session row, so concurrent appends to
        // one session queue up instead of colliding.
        let next: Option<i64> = sqlx::query_scalar(
            "UPDATE sessions SET next_seq = next_seq + $2 WHERE id = $1 RETURNING next_seq",
        )
        .bind(session_id)
        .bind(count)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(next) = next else {
            tx.rollback().await?;
            return Ok(false);
        };
        let mut seq = next - count;
        let now = now_ms();
        for chunk in messages.chunks(MESSAGE_CHUNK) {
            let sql = format!(
                "INSERT INTO session_messages (session_id, created_at, seq, message) VALUES {}",
                values_rows(chunk.len(), &["$1", "$2"], 2, 3)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(session_id).bind(now);
            for message in chunk {
                query = query.bind(seq).bind(message.as_str());
                seq += 1;
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The last `limit` messages of a session, oldest first.
    pub async fn recent_messages(
        &self,
        session_id: i64,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        self.recent_messages_since(session_id, limit, None).await
    }

    /// The last `limit` messages of a session kept at or after `since` (ms since the epoch;
    /// `None`: any time), oldest first.
    pub async fn recent_messages_since(
        &self,
        session_id: i64,
        limit: i64,
        since: Option<i64>,
    ) -> Result<Vec<String>, StorageError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        sqlx::query_scalar::<_, String>(
            "SELECT message FROM (SELECT seq, message FROM session_messages WHERE session_id = $1 \
             AND created_at >= $3 ORDER BY seq DESC LIMIT $2) AS recent ORDER BY seq",
        )
        .bind(session_id)
        .bind(limit)
        .bind(since.unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            StorageError::query(format_args!("reading messages of session {session_id}"), &e)
        })
    }

    /// A session's history as given to the model: at most `limit` messages kept at or after
    /// `since`, oldest first, the window moving in steps of half `limit`. Between two steps
    /// every request starts with the same messages (what providers' prompt caches need),
    /// where the plain last `limit` would change its first message every turn. Never fewer
    /// than `limit - limit / 2` messages once the session has that many.
    pub async fn history_window(
        &self,
        session_id: i64,
        limit: i64,
        since: Option<i64>,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self
            .history_window_after(session_id, limit, since, None)
            .await?
            .into_iter()
            .map(|(_, message)| message)
            .collect())
    }

    /// [`Store::history_window`] of the messages after `after_seq` (those a summary does not
    /// stand for), each with its place in the session.
    pub async fn history_window_after(
        &self,
        session_id: i64,
        limit: i64,
        since: Option<i64>,
        after_seq: Option<i64>,
    ) -> Result<Vec<(i64, String)>, StorageError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let since = since.unwrap_or(i64::MIN);
        let after = after_seq.unwrap_or(i64::MIN);
        let context = || format!("reading the history of session {session_id}");
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM session_messages WHERE session_id = $1 AND created_at >= $2 \
             AND seq > $3",
        )
        .bind(session_id)
        .bind(since)
        .bind(after)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StorageError::query(context(), &e))?;
        let skip = window_start(total, limit);
        let rows = sqlx::query(
            "SELECT seq, message FROM session_messages WHERE session_id = $1 AND created_at >= $2 \
             AND seq > $3 ORDER BY seq LIMIT $4 OFFSET $5",
        )
        .bind(session_id)
        .bind(since)
        .bind(after)
        .bind(limit)
        .bind(skip)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(context(), &e))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row
                    .try_get(0)
                    .map_err(|e| StorageError::query(context(), &e))?;
                let message: String = row
                    .try_get(1)
                    .map_err(|e| StorageError::query(context(), &e))?;
                Ok((seq, message))
            })
            .collect()
    }

    /// A session's compaction summary: the messages up to which it stands in, and its text.
    pub async fn session_summary(
        &self,
        session_id: i64,
    ) -> Result<Option<(i64, String)>, StorageError> {
        let context = || format!("reading the summary of session {session_id}");
        let row =
            sqlx::query("SELECT upto_seq, summary FROM session_summaries WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| StorageError::query(context(), &e))?;
        row.map(|row| {
            let upto: i64 = row
                .try_get(0)
                .map_err(|e| StorageError::query(context(), &e))?;
            let text: String = row
                .try_get(1)
                .map_err(|e| StorageError::query(context(), &e))?;
            Ok((upto, text))
        })
        .transpose()
    }

    /// Keeps `summary` as the session's summary of its messages up to `upto_seq`, unless one
    /// covering as many or more is there already (two turns compacting at once); `true` when
    /// it was kept.
    pub async fn set_session_summary(
        &self,
        session_id: i64,
        upto_seq: i64,
        summary: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO session_summaries (session_id, upto_seq, summary, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET \
             upto_seq = excluded.upto_seq, summary = excluded.summary, \
             created_at = excluded.created_at \
             WHERE session_summaries.upto_seq < excluded.upto_seq",
        )
        .bind(session_id)
        .bind(upto_seq)
        .bind(summary)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            StorageError::query(
                format_args!("keeping the summary of session {session_id}"),
                &e,
            )
        })?;
        Ok(done.rows_affected() == 1)
    }
}

/// How many of `total` messages [`Store::history_window`] leaves out: whole steps of
/// half `limit`, as few as bring the rest within `limit`.
fn window_start(total: i64, limit: i64) -> i64 {
    let step = (limit / 2).max(1);
    let over = total - limit;
    if over <= 0 {
        0
    } else {
        (over + step - 1) / step * step
    }
}

#[cfg(test)]
mod window_tests {
    use super::window_start;

    #[test]
    fn the_window_moves_in_steps_of_half_the_limit() {
        assert_eq!(window_start(0, 60), 0);
        assert_eq!(window_start(60, 60), 0);
        assert_eq!(window_start(61, 60), 30);
        assert_eq!(window_start(90, 60), 30);
        assert_eq!(window_start(91, 60), 60);
        assert_eq!(window_start(5, 1), 4);
        assert_eq!(window_start(3, 3), 0);
        assert_eq!(window_start(4, 3), 1);
    }
}
