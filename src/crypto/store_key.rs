//! The keys that encrypt the twins' crypto stores.
//!
//! matrix-sdk-sqlite stretches a passphrase with 200,000 PBKDF2 rounds every time a store is
//! opened: about a tenth of a second of CPU per twin, paid again each time an idle twin's
//! machine is reopened. Instead the passphrase is stretched once, when the service starts,
//! into a master key, and each store gets its own 32-byte key from it through HKDF-SHA256
//! (bound to the twin and the device). Stores made before this have no key marker and keep
//! opening with the passphrase.

use std::path::Path;

use hkdf::Hkdf;
use ruma::{DeviceId, UserId};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::Secret;

/// PBKDF2 rounds for the master key (matrix-sdk-store-encryption's own count).
const MASTER_ROUNDS: u32 = 200_000;
/// Salt of the master key: the passphrase is per installation (generated at random unless
/// configured), so a fixed, versioned salt is enough to separate it from other uses.
const MASTER_SALT: &[u8] = b"matrix-os crypto stores v1";
/// The file beside a store that says it is encrypted with a derived key, and how.
pub(crate) const KEY_MARKER: &str = "store-key";
/// What the marker holds for keys made by [`StoreKeys::key_for`].
const KEY_SCHEME: &str = "hkdf-sha256-v1";

/// How one store is encrypted.
#[derive(Debug)]
pub(crate) enum StoreSecret {
    /// A key of its own (stores made by this version).
    Key(Zeroizing<[u8; 32]>),
    /// The passphrase (stores made before keys were derived).
    Passphrase(Secret),
}

/// The passphrase and the master key stretched from it.
pub(crate) struct StoreKeys {
    passphrase: Secret,
    master: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(..)")
    }
}

impl StoreKeys {
    /// Stretches `passphrase` into the master key (about a tenth of a second of CPU, once).
    pub(crate) fn new(passphrase: Secret) -> Self {
        let mut master = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<Sha256>(
            passphrase.expose().as_bytes(),
            MASTER_SALT,
            MASTER_ROUNDS,
            master.as_mut(),
        );
        Self { passphrase, master }
    }

    /// The key of `twin`'s store for `device`.
    fn key_for(&self, twin: &UserId, device: &DeviceId) -> Zeroizing<[u8; 32]> {
        let hkdf = Hkdf::<Sha256>::new(None, self.master.as_ref());
        let info = format!("matrix-os crypto store\n{twin}\n{device}");
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        if hkdf.expand(info.as_bytes(), key.as_mut()).is_err() {
            unreachable!("32 bytes are a valid HKDF-SHA256 output length");
        }
        key
    }

    /// How the store in `dir` (of `twin`'s `device`) is encrypted: a new store (no database
    /// file yet) gets a derived key and its marker; an existing one without the marker was made
    /// with the passphrase.
    pub(crate) async fn secret_for(
        &self,
        dir: &Path,
        database: &Path,
        twin: &UserId,
        device: &DeviceId,
    ) -> std::io::Result<StoreSecret> {
        let marker = dir.join(KEY_MARKER);
        match tokio::fs::read_to_string(&marker).await {
            Ok(scheme) if scheme.trim() == KEY_SCHEME => {
                return Ok(StoreSecret::Key(self.key_for(twin, device)));
            }
            Ok(other) => {
                return Err(std::io::Error::other(format!(
                    "{}: unknown key scheme {:?}",
                    marker.display(),
                    other.trim()
                )));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        if tokio::fs::try_exists(database).await? {
            return Ok(StoreSecret::Passphrase(self.passphrase.clone()));
        }
        tokio::fs::write(&marker, KEY_SCHEME).await?;
        Ok(StoreSecret::Key(self.key_for(twin, device)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::{device_id, user_id};

    use super::*;

    #[tokio::test]
    async fn new_stores_get_their_own_key_and_old_ones_keep_the_passphrase() {
        let keys = StoreKeys::new(Secret::new("pass"));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let alice = user_id!("@alice_ai:x");
        let StoreSecret::Key(first) = keys
            .secret_for(dir.path(), &db, alice, device_id!("D1"))
            .await
            .unwrap()
        else {
            panic!("a new store gets a key");
        };
        std::fs::write(&db, b"").unwrap();
        let StoreSecret::Key(again) = keys
            .secret_for(dir.path(), &db, alice, device_id!("D1"))
            .await
            .unwrap()
        else {
            panic!("the marker says it has a key");
        };
        assert_eq!(*first, *again, "the same key every time");
        assert_ne!(
            *keys.key_for(alice, device_id!("D2")),
            *first,
            "another device, another key"
        );
        assert_ne!(
            *keys.key_for(user_id!("@bob_ai:x"), device_id!("D1")),
            *first,
            "another twin, another key"
        );
        let other = StoreKeys::new(Secret::new("other"));
        assert_ne!(*other.key_for(alice, device_id!("D1")), *first);

        let old = tempfile::tempdir().unwrap();
        let old_db = old.path().join("db");
        std::fs::write(&old_db, b"").unwrap();
        assert!(matches!(
            keys.secret_for(old.path(), &old_db, alice, device_id!("D1"))
                .await
                .unwrap(),
            StoreSecret::Passphrase(_)
        ));
        assert!(!old.path().join(KEY_MARKER).exists());
    }
}
