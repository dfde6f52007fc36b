//! The passphrase that encrypts the crypto stores.

use std::path::Path;

use super::CryptoError;
use crate::secret::Secret;

/// The configured passphrase, or the one kept in `<store_dir>/passphrase` (generated once,
/// mode 0600) when none is configured.
pub fn load_or_create_passphrase(
    store_dir: &Path,
    configured: &Secret,
) -> Result<Secret, CryptoError> {
    if !configured.is_empty() {
        return Ok(configured.clone());
    }
    let path = store_dir.join("passphrase");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(Secret::new(text.trim())),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(CryptoError::io(&path, err)),
    }
    std::fs::create_dir_all(store_dir).map_err(|e| CryptoError::io(store_dir, e))?;
    let secret = Secret::random_token();
    crate::private_file::write_private(&path, secret.expose().as_bytes())
        .map_err(|e| CryptoError::io(&path, e))?;
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_passphrase(dir.path(), &Secret::default()).unwrap();
        let again = load_or_create_passphrase(dir.path(), &Secret::default()).unwrap();
        assert_eq!(first, again);
        assert_eq!(first.expose().len(), 64);
        let configured = Secret::new("from-config");
        assert_eq!(
            load_or_create_passphrase(dir.path(), &configured).unwrap(),
            configured
        );
    }
}
