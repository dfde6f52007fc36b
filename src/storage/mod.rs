//! Durable state: processed transactions, the inbox, twins, rooms, sessions, and what end-to-end
//! encryption needs kept (undecryptable events, which rooms are encrypted).
//!
//! One code path for SQLite (default) and PostgreSQL, through [`sqlx::Any`]: every query uses
//! `$1`-style placeholders, which both drivers accept. The few places where the backends differ
//! are explicit and small: the DDL (one migration folder per backend), how a write transaction
//! begins (`BEGIN IMMEDIATE` on SQLite, so writers queue on `busy_timeout` instead of failing
//! with `SQLITE_BUSY` on lock upgrade) and an advisory lock on PostgreSQL that keeps inbox ids in
//! commit order.
//!
//! The inbox is what makes the appservice safe: [`Store::record_transaction`] stores a whole
//! homeserver transaction (its id and all its events) in one database transaction, so the
//! service can answer `200` only once the events are durable, and a repeated transaction id is
//! recognised and not stored twice. [`Store::record_transaction_with_crypto`] does the same for
//! a transaction that also carries encryption data, stored as one [`InboxKind::Crypto`] item
//! ahead of the transaction's events. Handled items are deleted by [`Store::finish_inbox`]; the
//! transaction ids stay (see [`Store::prune_transactions`]).

mod connect;
mod encryption;
mod held;
mod inbox;
mod installation;
mod live;
mod metrics;
mod migrate;
mod negotiations;
mod portals;
mod problems;
mod rooms;
mod sessions;
mod turns;
mod twins;
mod usage;
mod wal;

pub(crate) use self::connect::sqlite_url_relative_to;
pub use self::{
    held::{HeldKind, HeldRow, NewHeld},
    inbox::{InboxEvent, IncomingEvent},
    negotiations::NegotiationRow,
    problems::{PendingNotice, TwinProblem},
    rooms::{LogRow, MemberRow, PairingRow},
    sessions::SessionAudience,
    turns::{TurnRecord, TurnRow},
    wal::WalCheckpoint,
};

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use sqlx::{Any, AnyPool, Row, Transaction};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database said no: what was being done, and the database's reason.
    #[error("database: {0}")]
    Database(String),
    /// The database URL cannot be used.
    #[error(
        "unsupported database URL {url}: {reason} (expected sqlite://PATH or \
         postgres://USER@HOST:PORT/DATABASE)"
    )]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The folder for a SQLite file could not be created.
    #[error("cannot create folder {path} for the SQLite database: {source}")]
    CreateDir {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No connection to the database could be made or configured.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// The schema migrations could not be applied.
    #[error("cannot apply the database migrations to {url}: {reason}")]
    Migrate {
        /// The URL, password removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// A row the operation needs does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
}

impl StorageError {
    /// A failed query, with what was being done.
    fn query(what: impl std::fmt::Display, error: &sqlx::Error) -> Self {
        Self::Database(format!("{what}: {error}"))
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// What an inbox item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboxKind {
    /// A room event (timeline or state), as received.
    #[default]
    Event,
    /// The encryption data of a transaction (to-device messages, device-list changes, one-time
    /// key counts) as one JSON text. It has a lower id than the events of its transaction, so it
    /// is handled before them.
    Crypto,
}

impl InboxKind {
    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Crypto => "crypto",
        }
    }

    /// The kind stored as `value`, if it is one.
    fn from_column(value: &str) -> Option<Self> {
        match value {
            "event" => Some(Self::Event),
            "crypto" => Some(Self::Crypto),
            _ => None,
        }
    }
}

/// An item waiting in the inbox: an event, or the encryption data of a transaction.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// Monotonic id: arrival order.
    pub id: i64,
    /// Transaction that brought it.
    pub txn_id: String,
    /// The JSON, as received: the event for [`InboxKind::Event`], the encryption data for
    /// [`InboxKind::Crypto`].
    pub event: String,
    /// What `event` holds.
    pub kind: InboxKind,
    /// The event's room, when it has one (never for [`InboxKind::Crypto`]).
    pub room_id: Option<ruma::OwnedRoomId>,
}

/// An event a twin could not decrypt yet, kept until its room key arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecrypted {
    /// Row id, for [`Store::remove_undecrypted`]; increases with the time of storing.
    pub id: i64,
    /// Room of the event.
    pub room_id: OwnedRoomId,
    /// Twin that could not decrypt it.
    pub twin_id: OwnedUserId,
    /// Megolm session id the room key is missing for.
    pub session_id: String,
    /// The event's id.
    pub event_id: OwnedEventId,
    /// The encrypted event's JSON, as received.
    pub event_json: String,
    /// When it was first stored, in Unix milliseconds.
    pub since_ms: i64,
}

/// A twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinRow {
    /// The twin's MXID.
    pub twin_id: OwnedUserId,
    /// The owner's MXID.
    pub owner_id: OwnedUserId,
    /// Whether the account exists on the homeserver.
    pub registered: bool,
    /// Display name last set.
    pub display_name: Option<String>,
}

/// A room session: one conversation of one twin in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Session id.
    pub id: i64,
    /// Room.
    pub room_id: OwnedRoomId,
    /// Twin.
    pub twin_id: OwnedUserId,
}

/// The store: a connection pool to SQLite or PostgreSQL. Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// For reads.
    pool: AnyPool,
    /// For writes (see [`connect::Pools`]): every statement that changes a row goes here.
    writer: AnyPool,
    /// The URL with any password removed, for messages.
    url: Arc<str>,
}

impl Store {
    /// Connects (creating a SQLite file and its folder when missing) and runs migrations.
    ///
    /// Accepted URLs: `sqlite://PATH` (relative), `sqlite:///ABSOLUTE/PATH`, `sqlite:PATH`,
    /// `sqlite::memory:` (one connection, gone on close; for tests), and
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`).
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let (backend, pools, redacted) = connect::open(url).await?;
        let store = Self {
            backend,
            pool: pools.pool,
            writer: pools.writer,
            url: redacted.into(),
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL with any password removed, for messages.
    pub fn redacted_url(&self) -> &str {
        &self.url
    }

    /// A trivial query, for `doctor`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| StorageError::query(format_args!("ping {}", self.url), &e))?;
        Ok(())
    }

    /// Closes every connection, waiting for queries in flight. Later calls on any clone of this
    /// store fail.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Begins a transaction that is going to write.
    ///
    /// On SQLite this takes the write lock at once (`BEGIN IMMEDIATE`), waiting up to
    /// `busy_timeout`; a deferred transaction that reads first could otherwise fail with
    /// `SQLITE_BUSY` when it upgrades to a write.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }
}

/// Now, in Unix milliseconds.
/// Reads a column holding a Matrix ID (room, user or event), as its typed ID; text that is not a
/// valid ID is a decode error, never passed on as a string.
fn id_column<T>(row: &sqlx::any::AnyRow, index: usize) -> Result<T, sqlx::Error>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    let text: String = row.try_get(index)?;
    parse_id(index, text)
}

/// Like [`id_column`], for a nullable column.
fn id_column_opt<T>(row: &sqlx::any::AnyRow, index: usize) -> Result<Option<T>, sqlx::Error>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    let text: Option<String> = row.try_get(index)?;
    text.map(|text| parse_id(index, text)).transpose()
}

/// Parses the text of column `index` as a Matrix ID.
fn parse_id<T>(index: usize, text: String) -> Result<T, sqlx::Error>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    T::try_from(text).map_err(|e| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: Box::new(e),
    })
}

/// Now, in milliseconds since the Unix epoch: the timestamps the database keeps.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether an error is a unique-constraint violation (a concurrent writer won a race).
fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// `VALUES` rows for a multi-row insert: `rows` tuples of `per_row` placeholders each, numbered
/// from `$first`, each tuple prefixed by the fixed `shared` expressions (e.g. `$1`).
fn values_rows(rows: usize, shared: &[&str], per_row: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * (shared.len() + per_row) * 7);
    let mut n = first;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        let mut items = 0;
        for s in shared {
            if items > 0 {
                sql.push_str(", ");
            }
            sql.push_str(s);
            items += 1;
        }
        for _ in 0..per_row {
            if items > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
            n += 1;
            items += 1;
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use sqlx::Row;

    #[test]
    fn stored_ids_are_parsed_and_bad_ones_are_decode_errors() {
        let room: OwnedRoomId = parse_id(1, "!r:example.org".to_owned()).unwrap();
        assert_eq!(room.as_str(), "!r:example.org");
        let user: OwnedUserId = parse_id(2, "@a:example.org".to_owned()).unwrap();
        assert_eq!(user.server_name(), "example.org");
        let bad = parse_id::<OwnedUserId>(3, "not an id".to_owned()).unwrap_err();
        assert!(
            matches!(&bad, sqlx::Error::ColumnDecode { index, .. } if index == "3"),
            "{bad}"
        );
        assert!(parse_id::<OwnedEventId>(0, "no-sigil".to_owned()).is_err());
    }

    #[test]
    fn values_rows_numbers_placeholders() {
        assert_eq!(
            values_rows(3, &["$1"], 1, 2),
            "($1, $2), ($1, $3), ($1, $4)"
        );
        assert_eq!(
            values_rows(2, &["$1", "$2"], 2, 3),
            "($1, $2, $3, $4), ($1, $2, $5, $6)"
        );
        assert_eq!(values_rows(1, &[], 2, 1), "($1, $2)");
    }

    #[tokio::test]
    async fn sqlite_file_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let mut pragma = async |name: &str| -> String {
            let sql = sqlx::AssertSqlSafe(format!("PRAGMA {name}"));
            let row = sqlx::query(sql).fetch_one(&mut *conn).await.unwrap();
            row.try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("synchronous").await, "2"); // FULL
        assert_eq!(pragma("foreign_keys").await, "1");
        assert_eq!(pragma("busy_timeout").await, "5000");
        assert_eq!(
            pragma("wal_autocheckpoint").await,
            connect::SQLITE_WAL_BACKSTOP_PAGES.to_string()
        );
        // An ack writes the inbox rows and no index (the reader lists parked ids itself).
        let inbox_indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'inbox'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(inbox_indexes, 0);
        drop(conn);
        store.close().await;
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        store.ping().await.unwrap();
        let events: Vec<String> = (0..3).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert!(store.record_transaction("t1", &events).await.unwrap());
        assert!(!store.record_transaction("t1", &events).await.unwrap());
        let items = store.pending_inbox(0, 10).await.unwrap();
        assert_eq!(
            items.iter().map(|i| i.event.clone()).collect::<Vec<_>>(),
            events
        );
        store.finish_inbox(items[0].id).await.unwrap();
        assert_eq!(store.inbox_backlog().await.unwrap(), 2);
        let session = store
            .current_session(
                ruma::room_id!("!r:x"),
                ruma::user_id!("@a_ai:x"),
                SessionAudience::Owner,
            )
            .await
            .unwrap();
        store
            .append_messages(session.id, &["a".into(), "b".into()])
            .await
            .unwrap();
        assert_eq!(
            store.recent_messages(session.id, 1).await.unwrap(),
            vec!["b".to_string()]
        );
        store.close().await;
        assert!(store.ping().await.is_err());
    }

    #[tokio::test]
    async fn memory_store_crypto_and_encryption() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let events = vec!["{\"n\":0}".to_string()];
        assert!(
            store
                .record_transaction_with_crypto("t1", Some("{\"to_device\":[]}"), &events)
                .await
                .unwrap()
        );
        let items = store.pending_inbox(0, 10).await.unwrap();
        let kinds: Vec<InboxKind> = items.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, [InboxKind::Crypto, InboxKind::Event]);
        assert_eq!(items[0].event, "{\"to_device\":[]}");
        for kind in [InboxKind::Event, InboxKind::Crypto] {
            assert_eq!(InboxKind::from_column(kind.as_str()), Some(kind));
        }
        assert_eq!(InboxKind::from_column("other"), None);

        let id = store
            .add_undecrypted(
                ruma::room_id!("!r:x"),
                ruma::user_id!("@a_ai:x"),
                "s1",
                ruma::event_id!("$e"),
                "{}",
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .add_undecrypted(
                    ruma::room_id!("!r:x"),
                    ruma::user_id!("@a_ai:x"),
                    "s1",
                    ruma::event_id!("$e"),
                    "{}"
                )
                .await
                .unwrap(),
            id
        );
        assert_eq!(store.undecrypted_count().await.unwrap(), 1);
        store.remove_undecrypted(id).await.unwrap();
        assert_eq!(store.undecrypted_count().await.unwrap(), 0);

        assert_eq!(
            store.room_encrypted(ruma::room_id!("!r:x")).await.unwrap(),
            None
        );
        store
            .set_room_encrypted(ruma::room_id!("!r:x"), true)
            .await
            .unwrap();
        store
            .set_room_encrypted(ruma::room_id!("!r:x"), false)
            .await
            .unwrap();
        assert_eq!(
            store.room_encrypted(ruma::room_id!("!r:x")).await.unwrap(),
            Some(true)
        );
        store.close().await;
    }
}
