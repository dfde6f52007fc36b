//! The installation check on PostgreSQL (the SQLite side is covered by the unit tests in
//! `src/installation/`): the one-row table, and no password in the refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/postgres.rs"]
mod postgres;

use matrix_os::{
    installation::{self, InstallationError},
    storage::Store,
};

#[tokio::test]
async fn postgres_keeps_one_installation_id_and_refusals_hide_the_password() {
    let pg = postgres::PgServer::start();
    // Trust authentication accepts any password; it is here to be kept out of messages.
    let url = pg.url().replace("postgres@", "postgres:s3cret-pw@");
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.installation_id().await.unwrap(), None);
    assert_eq!(store.set_installation_id("first").await.unwrap(), "first");
    assert_eq!(store.set_installation_id("second").await.unwrap(), "first");

    let crypto = tempfile::tempdir().unwrap();
    std::fs::write(crypto.path().join(installation::FILE_NAME), "other\n").unwrap();
    let err = installation::check(&store, crypto.path())
        .await
        .unwrap_err();
    assert!(matches!(err, InstallationError::Mismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains("s3cret-pw"), "{message}");
    assert!(
        message.contains("database.url") && message.contains("first") && message.contains("other"),
        "{message}"
    );

    std::fs::remove_file(crypto.path().join(installation::FILE_NAME)).unwrap();
    let id = installation::check(&store, crypto.path()).await.unwrap();
    assert_eq!(id.as_str(), "first");
    store.close().await;
}
