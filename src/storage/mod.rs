//! Durable state: processed transactions, the inbox, twins, rooms and sessions.
//!
//! SKELETON: signatures are the contract; bodies are filled in by the storage work item.
//! One code path for SQLite (default) and PostgreSQL, through `sqlx::Any`.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database said no.
    #[error("database: {0}")]
    Database(String),
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// An event waiting in the inbox.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// Monotonic id: arrival order.
    pub id: i64,
    /// Transaction that brought it.
    pub txn_id: String,
    /// The event's JSON, as received.
    pub event: String,
}

/// A twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinRow {
    /// The twin's MXID.
    pub twin_id: String,
    /// The owner's MXID.
    pub owner_id: String,
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
    pub room_id: String,
    /// Twin.
    pub twin_id: String,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Connects (creating a SQLite file when missing) and runs migrations.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let _ = url;
        Ok(Self { backend: Backend::Sqlite })
    }
    /// Closes the pool.
    pub async fn close(&self) {}
    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// A trivial query, for `doctor`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        todo!()
    }
    /// Records a transaction and its events in one DB transaction. `false` when `txn_id` was
    /// already recorded (nothing is stored again).
    pub async fn record_transaction(&self, txn_id: &str, events: &[String]) -> Result<bool, StorageError> {
        todo!("{txn_id}{events:?}")
    }
    /// Unfinished inbox items with `id > after_id`, oldest first.
    pub async fn pending_inbox(&self, after_id: i64, limit: i64) -> Result<Vec<InboxItem>, StorageError> {
        todo!("{after_id}{limit}")
    }
    /// Marks an inbox item handled.
    pub async fn finish_inbox(&self, id: i64) -> Result<(), StorageError> {
        todo!("{id}")
    }
    /// Count of unfinished inbox items.
    pub async fn inbox_backlog(&self) -> Result<i64, StorageError> {
        todo!()
    }
    /// A twin by MXID.
    pub async fn get_twin(&self, twin_id: &str) -> Result<Option<TwinRow>, StorageError> {
        todo!("{twin_id}")
    }
    /// Inserts or updates a twin.
    pub async fn upsert_twin(&self, twin: &TwinRow) -> Result<(), StorageError> {
        todo!("{twin:?}")
    }
    /// Records a twin's membership (`invite`, `join`, `leave`, `ban`) in a room.
    pub async fn set_membership(&self, room_id: &str, twin_id: &str, membership: &str) -> Result<(), StorageError> {
        todo!("{room_id}{twin_id}{membership}")
    }
    /// Twins known in a room with their membership.
    pub async fn room_twins(&self, room_id: &str) -> Result<Vec<(String, String)>, StorageError> {
        todo!("{room_id}")
    }
    /// The current session of a twin in a room, created when missing.
    pub async fn current_session(&self, room_id: &str, twin_id: &str) -> Result<SessionRow, StorageError> {
        todo!("{room_id}{twin_id}")
    }
    /// Starts a new session, which becomes the current one.
    pub async fn new_session(&self, room_id: &str, twin_id: &str) -> Result<SessionRow, StorageError> {
        todo!("{room_id}{twin_id}")
    }
    /// Appends messages (JSON text) to a session, in order.
    pub async fn append_messages(&self, session_id: i64, messages: &[String]) -> Result<(), StorageError> {
        todo!("{session_id}{messages:?}")
    }
    /// The last `limit` messages of a session, oldest first.
    pub async fn recent_messages(&self, session_id: i64, limit: i64) -> Result<Vec<String>, StorageError> {
        todo!("{session_id}{limit}")
    }
}
