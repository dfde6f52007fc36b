#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::storage::TwinRow;

/// A folder with a database file and a crypto store folder in it.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn store(&self, name: &str) -> Store {
        Store::connect(&format!("sqlite://{}/{name}", self.dir.path().display()))
            .await
            .unwrap()
    }

    fn store_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

async fn add_twin(store: &Store) {
    store
        .upsert_twin(&TwinRow {
            twin_id: ruma::owned_user_id!("@alice_ai:example.org"),
            owner_id: ruma::owned_user_id!("@alice:example.org"),
            registered: true,
            display_name: None,
        })
        .await
        .unwrap();
}

fn file_id(store_dir: &Path) -> String {
    std::fs::read_to_string(store_dir.join(FILE_NAME))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_new_installation_gets_one_id_in_both_places() {
    let setup = Setup::new();
    let store = setup.store("db.sqlite").await;
    let crypto = setup.store_dir("crypto");
    let id = check(&store, &crypto).await.unwrap();
    assert_eq!(id.as_str().len(), 32);
    assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        store.installation_id().await.unwrap().as_deref(),
        Some(id.as_str())
    );
    assert_eq!(file_id(&crypto), id.as_str());
    assert_eq!(check(&store, &crypto).await.unwrap(), id, "stable");
    let leftovers: Vec<_> = std::fs::read_dir(&crypto)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [FILE_NAME], "no temporary file is left");
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_installation_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let store = setup.store("db.sqlite").await;
    let crypto = setup.store_dir("crypto");
    check(&store, &crypto).await.unwrap();
    let mode = std::fs::metadata(crypto.join(FILE_NAME))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    store.close().await;
}

#[tokio::test]
async fn a_fresh_store_dir_beside_an_old_database_gets_the_database_id() {
    let setup = Setup::new();
    let store = setup.store("db.sqlite").await;
    let id = check(&store, &setup.store_dir("crypto")).await.unwrap();
    add_twin(&store).await;
    let fresh = setup.store_dir("new-crypto");
    assert_eq!(check(&store, &fresh).await.unwrap(), id);
    assert_eq!(file_id(&fresh), id.as_str());
    store.close().await;
}

#[tokio::test]
async fn a_fresh_database_beside_an_old_store_dir_is_refused() {
    let setup = Setup::new();
    let old = setup.store("old.sqlite").await;
    let crypto = setup.store_dir("crypto");
    let id = check(&old, &crypto).await.unwrap();
    old.close().await;

    let fresh = setup.store("fresh.sqlite").await;
    let err = check(&fresh, &crypto).await.unwrap_err();
    assert!(matches!(err, InstallationError::Mismatch { .. }), "{err:?}");
    let message = err.to_string();
    for part in [
        "encryption.store_dir",
        "database.url",
        &crypto.display().to_string(),
        "fresh.sqlite",
        id.as_str(),
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert_eq!(
        fresh.installation_id().await.unwrap(),
        None,
        "nothing is recorded"
    );
    fresh.close().await;
}

#[tokio::test]
async fn different_ids_are_refused() {
    let setup = Setup::new();
    let a = setup.store("a.sqlite").await;
    let b = setup.store("b.sqlite").await;
    let crypto_a = setup.store_dir("crypto-a");
    let id_a = check(&a, &crypto_a).await.unwrap();
    let id_b = check(&b, &setup.store_dir("crypto-b")).await.unwrap();
    assert_ne!(id_a, id_b);
    let err = check(&b, &crypto_a).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, InstallationError::Mismatch { .. }));
    assert!(
        message.contains(id_a.as_str()) && message.contains(id_b.as_str()),
        "{message}"
    );
    assert_eq!(file_id(&crypto_a), id_a.as_str(), "the file is untouched");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_store_dir_from_before_installation_ids_is_adopted() {
    let setup = Setup::new();
    let store = setup.store("db.sqlite").await;
    add_twin(&store).await;
    let crypto = setup.store_dir("crypto");
    let twin = crypto.join("alice_ai");
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::write(twin.join("device_id"), "TWINDEV").unwrap();
    std::fs::write(crypto.join("passphrase"), "secret").unwrap();

    let id = check(&store, &crypto).await.unwrap();
    assert_eq!(file_id(&crypto), id.as_str());
    assert_eq!(
        store.installation_id().await.unwrap().as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        std::fs::read_to_string(twin.join("device_id")).unwrap(),
        "TWINDEV"
    );
    store.close().await;
}

#[tokio::test]
async fn an_older_database_with_twins_adopts_the_store_dir_id() {
    let setup = Setup::new();
    let store = setup.store("db.sqlite").await;
    let crypto = setup.store_dir("crypto");
    std::fs::create_dir_all(&crypto).unwrap();
    std::fs::write(crypto.join(FILE_NAME), "0123456789abcdef0123456789abcdef\n").unwrap();
    add_twin(&store).await;
    let id = check(&store, &crypto).await.unwrap();
    assert_eq!(id.as_str(), "0123456789abcdef0123456789abcdef");
    assert_eq!(
        store.installation_id().await.unwrap().as_deref(),
        Some(id.as_str())
    );
    store.close().await;
}

#[tokio::test]
async fn a_damaged_installation_file_is_reported_not_replaced() {
    let setup = Setup::new();
    let store = setup.store("db.sqlite").await;
    let crypto = setup.store_dir("crypto");
    std::fs::create_dir_all(&crypto).unwrap();
    std::fs::write(crypto.join(FILE_NAME), "   \n").unwrap();
    let err = check(&store, &crypto).await.unwrap_err();
    assert!(matches!(err, InstallationError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("encryption.store_dir"), "{err}");
    store.close().await;
}

#[tokio::test]
async fn an_in_memory_database_leaves_the_store_dir_alone() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = check(&store, dir.path()).await.unwrap();
    assert!(!dir.path().join(FILE_NAME).exists());
    assert_eq!(
        store.installation_id().await.unwrap().as_deref(),
        Some(id.as_str())
    );
    store.close().await;
}

#[test]
fn mismatch_messages_never_show_a_database_password() {
    // The message takes the URL from Store::redacted_url; this pins the wording around it.
    let err = InstallationError::Mismatch {
        store_dir: PathBuf::from("/x/crypto"),
        database: "postgres://bob:***@db/app".into(),
        detail: "d".into(),
    };
    assert_eq!(
        err.to_string(),
        "encryption.store_dir (/x/crypto) belongs to another installation than database.url \
         (postgres://bob:***@db/app): d; point one of them at the other's installation, or at a \
         fresh folder/database"
    );
}

#[test]
fn ids_are_parsed_leniently_but_not_blindly() {
    assert_eq!(
        InstallationId::parse(" abc \n").map(|i| i.0),
        Some("abc".to_owned())
    );
    assert_eq!(InstallationId::parse(""), None);
    assert_eq!(InstallationId::parse("a b"), None);
    assert_eq!(InstallationId::parse(&"a".repeat(129)), None);
    assert_ne!(InstallationId::random(), InstallationId::random());
}
