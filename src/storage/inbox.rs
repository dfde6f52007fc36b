//! Processed transaction ids and the inbox of events (and encryption data) waiting to be handled.

use std::time::Duration;

use ruma::{OwnedRoomId, RoomId};
use serde::Deserialize;
use sqlx::{AssertSqlSafe, Row};

use super::{Backend, InboxItem, InboxKind, StorageError, Store, now_ms, values_rows};

/// Events per multi-row `INSERT` (two placeholders each, plus the shared transaction id and
/// kind): far below the parameter limits of SQLite (32766) and PostgreSQL (65535).
const INBOX_CHUNK: usize = 500;

/// An event of a transaction as the inbox stores it: its JSON as received, and its room (read
/// once, at intake), by which a busy room's events are left in the inbox and read again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingEvent {
    /// The room the event belongs to, when it has one.
    pub room_id: Option<OwnedRoomId>,
    /// The event's JSON, as received.
    pub json: String,
}

impl IncomingEvent {
    /// The event `json`, its room read from its `room_id` (none when missing or malformed).
    pub fn from_json(json: String) -> Self {
        #[derive(Deserialize)]
        struct Head {
            room_id: Option<OwnedRoomId>,
        }
        let room_id = serde_json::from_str::<Head>(&json)
            .ok()
            .and_then(|head| head.room_id);
        Self { room_id, json }
    }
}

/// What the inbox stores of an event: its JSON and its room. Implemented for
/// [`IncomingEvent`] (the room read at intake) and for plain JSON texts (the room read here).
pub trait InboxEvent: Sync {
    /// The event's JSON, as received.
    fn json(&self) -> &str;
    /// Its room, when it has one.
    fn room_id(&self) -> Option<OwnedRoomId>;
}

impl InboxEvent for IncomingEvent {
    fn json(&self) -> &str {
        &self.json
    }

    fn room_id(&self) -> Option<OwnedRoomId> {
        self.room_id.clone()
    }
}

impl InboxEvent for String {
    fn json(&self) -> &str {
        self
    }

    fn room_id(&self) -> Option<OwnedRoomId> {
        IncomingEvent::from_json(self.clone()).room_id
    }
}

const SELECT_INBOX: &str = "SELECT id, txn_id, event, kind, room_id FROM inbox";

fn inbox_row(row: &sqlx::any::AnyRow) -> Result<InboxItem, sqlx::Error> {
    let kind: String = row.try_get(3)?;
    let kind = InboxKind::from_column(&kind)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown inbox item kind {kind:?}").into()))?;
    let room: Option<String> = row.try_get(4)?;
    Ok(InboxItem {
        id: row.try_get(0)?,
        txn_id: row.try_get(1)?,
        event: row.try_get(2)?,
        kind,
        room_id: room.and_then(|room| OwnedRoomId::try_from(room).ok()),
    })
}

/// `$1,$2,…,$n`: placeholders for `n` bound values.
fn numbered(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Key of the PostgreSQL advisory lock that serialises inbox writers ("mxos-inb").
const INBOX_LOCK_KEY: i64 = 0x6d78_6f73_2d69_6e62;

impl Store {
    /// Records a transaction and its events in one DB transaction. `false` when `txn_id` was
    /// already recorded (nothing is stored again).
    ///
    /// When this returns `Ok(true)` the events are committed (on SQLite with
    /// `synchronous=FULL`, on disk), so the homeserver may be told `200`. Concurrent calls with
    /// the same id: exactly one returns `true`. Inbox ids follow the order of the events and the
    /// order in which transactions commit.
    ///
    /// Same as [`Store::record_transaction_with_crypto`] without encryption data.
    pub async fn record_transaction(
        &self,
        txn_id: &str,
        events: &[String],
    ) -> Result<bool, StorageError> {
        self.record_transaction_with_crypto(txn_id, None, events)
            .await
    }

    /// Records a transaction, its encryption data and its events in one DB transaction. `false`
    /// when `txn_id` was already recorded (nothing is stored again, whatever `crypto` and
    /// `events` hold this time).
    ///
    /// `crypto`, when given, is the transaction's encryption data (to-device messages,
    /// device-list changes, one-time-key counts) as one JSON text. It becomes one inbox item of
    /// kind [`InboxKind::Crypto`] whose id is lower than those of the transaction's events
    /// (kind [`InboxKind::Event`]), so a reader in id order handles it first: room keys arrive
    /// before the events they decrypt. A transaction with encryption data and no events is
    /// recorded too.
    ///
    /// Durability, deduplication and ordering are those of [`Store::record_transaction`].
    pub async fn record_transaction_with_crypto<E: InboxEvent>(
        &self,
        txn_id: &str,
        crypto: Option<&str>,
        events: &[E],
    ) -> Result<bool, StorageError> {
        let what = || {
            format!(
                "recording transaction {txn_id:?} ({} events{})",
                events.len(),
                if crypto.is_some() {
                    ", with encryption data"
                } else {
                    ""
                }
            )
        };
        self.try_record_transaction(txn_id, crypto, events)
            .await
            .map_err(|e| StorageError::query(what(), &e))
    }

    async fn try_record_transaction<E: InboxEvent>(
        &self,
        txn_id: &str,
        crypto: Option<&str>,
        events: &[E],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Identity values are handed out at insert time, not at commit: without this lock a
            // later transaction could commit lower ids after a reader has moved past them.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(INBOX_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO transactions (txn_id, event_count, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (txn_id) DO NOTHING",
        )
        .bind(txn_id)
        .bind(i64::try_from(events.len()).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(crypto) = crypto {
            // Its own statement, before the events: its id is lower than theirs.
            sqlx::query("INSERT INTO inbox (txn_id, kind, event) VALUES ($1, $2, $3)")
                .bind(txn_id)
                .bind(InboxKind::Crypto.as_str())
                .bind(crypto)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in events.chunks(INBOX_CHUNK) {
            let sql = format!(
                "INSERT INTO inbox (txn_id, kind, event, room_id) VALUES {}",
                values_rows(chunk.len(), &["$1", "$2"], 2, 3)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(txn_id)
                .bind(InboxKind::Event.as_str());
            for event in chunk {
                query = query
                    .bind(event.json().to_owned())
                    .bind(event.room_id().map(|room| room.as_str().to_owned()));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Unfinished inbox items with `id > after_id`, oldest first, at most `limit`, each with its
    /// [`InboxKind`].
    pub async fn pending_inbox(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<InboxItem>, StorageError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let what = || format!("reading the inbox after id {after_id}");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_INBOX} WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(inbox_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// The unfinished inbox items among `ids`, oldest first: what a room's queue had no space
    /// for, read again by id when it has.
    pub async fn inbox_items(&self, ids: &[i64]) -> Result<Vec<InboxItem>, StorageError> {
        let what = || format!("reading {} inbox items by id", ids.len());
        let mut items = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(INBOX_CHUNK) {
            let sql = format!("{SELECT_INBOX} WHERE id IN ({})", numbered(chunk.len()));
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(|e| StorageError::query(what(), &e))?;
            for row in &rows {
                items.push(inbox_row(row).map_err(|e| StorageError::query(what(), &e))?);
            }
        }
        // Over chunks, and whatever order `ids` came in.
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    /// Unfinished events of `room` with `from_id <= id <= upto_id`, oldest first, at most
    /// `limit`: what a room's queue had no space for, read again when it has. The inbox has no
    /// index by room (it would cost every ack): this scans the ids from `from_id` on.
    pub async fn pending_inbox_in_room(
        &self,
        room: &RoomId,
        from_id: i64,
        upto_id: i64,
        limit: i64,
    ) -> Result<Vec<InboxItem>, StorageError> {
        if limit <= 0 || from_id > upto_id {
            return Ok(Vec::new());
        }
        let what = || format!("reading the inbox of {room} from id {from_id}");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_INBOX} WHERE room_id = $1 AND id >= $2 AND id <= $3 ORDER BY id LIMIT $4"
        )))
        .bind(room.as_str())
        .bind(from_id)
        .bind(upto_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StorageError::query(what(), &e))?;
        rows.iter()
            .map(inbox_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StorageError::query(what(), &e))
    }

    /// Marks an inbox item handled (it is removed; its transaction id stays recorded). Finishing
    /// an item twice, or an unknown id, is not an error.
    pub async fn finish_inbox(&self, id: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM inbox WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|e| StorageError::query(format_args!("finishing inbox item {id}"), &e))?;
        Ok(())
    }

    /// Marks many inbox items handled in one write (the dispatcher batches them, so marking
    /// items done does not compete with acknowledging new transactions one fsync at a time).
    pub async fn finish_inbox_many(&self, ids: &[i64]) -> Result<(), StorageError> {
        for chunk in ids.chunks(500) {
            let sql = format!("DELETE FROM inbox WHERE id IN ({})", numbered(chunk.len()));
            // Only numbered placeholders are interpolated; the ids are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&self.writer).await.map_err(|e| {
                StorageError::query(format_args!("finishing {} inbox items", chunk.len()), &e)
            })?;
        }
        Ok(())
    }

    /// Count of unfinished inbox items.
    pub async fn inbox_backlog(&self) -> Result<i64, StorageError> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StorageError::query("counting the inbox backlog", &e))
    }

    /// Forgets transaction ids recorded more than `older_than` ago, so the table does not grow
    /// forever; returns how many were removed. A homeserver retries a failed transaction for
    /// minutes, not days: keep at least a few days.
    pub async fn prune_transactions(&self, older_than: Duration) -> Result<u64, StorageError> {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        let done = sqlx::query("DELETE FROM transactions WHERE received_at < $1")
            .bind(cutoff)
            .execute(&self.writer)
            .await
            .map_err(|e| StorageError::query("pruning old transaction ids", &e))?;
        Ok(done.rows_affected())
    }
}
