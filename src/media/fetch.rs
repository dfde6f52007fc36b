//! Getting a media message's bytes (download as the twin, decryption with its hash checked)
//! and sealing a file for an encrypted room.

use std::io::{Cursor, Read};

use matrix_sdk_crypto::{AttachmentDecryptor, AttachmentEncryptor, MediaEncryptionInfo};
use ruma::{
    OwnedMxcUri, UserId,
    events::room::{EncryptedFile, MediaSource},
};

use super::{MediaError, MediaRef};
use crate::matrix::{MatrixClient, MatrixError};

/// The bytes of `media`, downloaded as `twin` and decrypted when it is an encrypted
/// attachment. At most `max_bytes`: a larger declared size is refused before anything is
/// downloaded, a larger download as soon as it passes the bound. A wrong hash (tampered or
/// truncated ciphertext) is [`MediaError::Tampered`] and nothing of it is returned.
pub async fn fetch(
    matrix: &MatrixClient,
    twin: &UserId,
    media: &MediaRef,
    max_bytes: usize,
) -> Result<Vec<u8>, MediaError> {
    if media
        .size
        .is_some_and(|size| usize::try_from(size).map_or(true, |size| size > max_bytes))
    {
        return Err(MediaError::TooLarge { max: max_bytes });
    }
    let (uri, encrypted) = match &media.source.0 {
        MediaSource::Plain(uri) => (uri.clone(), None),
        MediaSource::Encrypted(file) => (file.url.clone(), Some(file.clone())),
    };
    let downloaded =
        matrix
            .download_media(twin, &uri, max_bytes)
            .await
            .map_err(|err| match err {
                MatrixError::TooLarge { max } => MediaError::TooLarge { max },
                MatrixError::Unreachable { message, .. } => MediaError::Unreachable(message),
                MatrixError::Api {
                    errcode, message, ..
                } => MediaError::Refused(format!("{errcode}: {message}")),
                MatrixError::Protocol(message) => MediaError::Refused(message),
            })?;
    match encrypted {
        None => Ok(downloaded.bytes),
        Some(file) => tokio::task::spawn_blocking(move || decrypt(downloaded.bytes, *file))
            .await
            .map_err(|e| MediaError::Undecryptable(format!("decryption stopped: {e}")))?,
    }
}

/// Decrypts an attachment, checking the SHA-256 of its ciphertext.
fn decrypt(ciphertext: Vec<u8>, file: EncryptedFile) -> Result<Vec<u8>, MediaError> {
    let mut cursor = Cursor::new(ciphertext);
    let info = MediaEncryptionInfo::from(file);
    let mut decryptor = AttachmentDecryptor::new(&mut cursor, info)
        .map_err(|e| MediaError::Undecryptable(e.to_string()))?;
    let mut plain = Vec::new();
    decryptor
        .read_to_end(&mut plain)
        .map_err(|_| MediaError::Tampered)?;
    Ok(plain)
}

/// A file sealed for an encrypted room: the ciphertext to upload, and what the event carries
/// once it is uploaded (key, iv, hash).
pub struct Sealed {
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    info: MediaEncryptionInfo,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl Sealed {
    /// The event's `file`, for the ciphertext uploaded at `url`.
    pub fn source(self, url: OwnedMxcUri) -> MediaSource {
        MediaSource::Encrypted(Box::new(EncryptedFile::new(
            url,
            self.info.encryption_info,
            self.info.hashes,
        )))
    }
}

/// Encrypts `plain` with a fresh key (matrix-sdk-crypto's attachment encryption).
pub fn seal(plain: &[u8]) -> Result<Sealed, MediaError> {
    let mut reader = Cursor::new(plain);
    let mut encryptor = AttachmentEncryptor::new(&mut reader);
    let mut ciphertext = Vec::with_capacity(plain.len());
    encryptor
        .read_to_end(&mut ciphertext)
        .map_err(|e| MediaError::Undecryptable(format!("encryption failed: {e}")))?;
    let info = encryptor.finish();
    Ok(Sealed { ciphertext, info })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn file_of(sealed: Sealed) -> (Vec<u8>, EncryptedFile) {
        let ciphertext = sealed.ciphertext.clone();
        let MediaSource::Encrypted(file) = sealed.source("mxc://x/y".into()) else {
            panic!("not encrypted");
        };
        (ciphertext, *file)
    }

    #[test]
    fn a_sealed_file_opens_with_its_key_and_a_changed_one_does_not() {
        let plain = b"receipt: 12.50 EUR".to_vec();
        let (ciphertext, file) = file_of(seal(&plain).unwrap());
        assert_ne!(ciphertext, plain);
        assert_eq!(decrypt(ciphertext.clone(), file.clone()).unwrap(), plain);

        let mut changed = ciphertext.clone();
        changed[0] ^= 1;
        assert!(matches!(
            decrypt(changed, file.clone()),
            Err(MediaError::Tampered)
        ));
        let truncated = ciphertext[..ciphertext.len() - 1].to_vec();
        assert!(matches!(
            decrypt(truncated, file.clone()),
            Err(MediaError::Tampered)
        ));
        // Another file's hash: the same check.
        let (_, other) = file_of(seal(b"something else").unwrap());
        let mut json = serde_json::to_value(&file).unwrap();
        json["hashes"] = serde_json::to_value(&other.hashes).unwrap();
        let wrong_hash: EncryptedFile = serde_json::from_value(json).unwrap();
        assert!(matches!(
            decrypt(ciphertext, wrong_hash),
            Err(MediaError::Tampered)
        ));
    }
}
