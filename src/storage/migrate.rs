//! Schema migrations, embedded at build time: one folder per backend, because the DDL differs.

use sqlx::migrate::Migrator;

use super::{Backend, StorageError, Store};

/// `migrations/sqlite/*.sql`.
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
/// `migrations/postgres/*.sql`.
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// Applies the migrations the database lacks (PostgreSQL: under an advisory lock, so several
/// instances starting at once are safe).
pub(super) async fn run(store: &Store) -> Result<(), StorageError> {
    let migrator = match store.backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    migrator
        .run(&store.pool)
        .await
        .map_err(|e| StorageError::Migrate {
            url: store.url.to_string(),
            reason: e.to_string(),
        })
}
