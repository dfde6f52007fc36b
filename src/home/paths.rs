//! Turning model-supplied paths into paths inside the home, and back.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::HomeError;

/// Resolves `rel` against `root`; `canonical_root` is `root` with symlinks resolved.
pub(super) fn resolve(root: &Path, canonical_root: &Path, rel: &str) -> Result<PathBuf, HomeError> {
    let escape = || HomeError::Escape(rel.to_owned());
    if rel.contains('\0') {
        return Err(escape());
    }
    // Normalize lexically so `a/../b` is checked (and later opened) as `b`: the OS never gets
    // to interpret a `..` that might follow a symlink out.
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(escape)?;
            }
            Component::Normal(part) => {
                // Refused anywhere, not just at the top: a nested repository's internals are
                // no more the model's business than the home's own.
                if part.eq_ignore_ascii_case(".git") {
                    return Err(escape());
                }
                parts.push(part);
            }
            Component::RootDir | Component::Prefix(_) => return Err(escape()),
        }
    }
    let mut path = root.to_path_buf();
    path.extend(&parts);
    check_symlinks(canonical_root, &path, rel)?;
    Ok(path)
}

/// Refuses `path` when its longest existing ancestor (itself included) resolves, through
/// symlinks, to somewhere outside the home.
fn check_symlinks(canonical_root: &Path, path: &Path, rel: &str) -> Result<(), HomeError> {
    let existing = path.ancestors().find(|p| p.symlink_metadata().is_ok());
    let Some(existing) = existing else {
        return Err(HomeError::Other(format!(
            "your home folder is missing, cannot use {rel:?}"
        )));
    };
    match std::fs::canonicalize(existing) {
        Ok(real) if real.starts_with(canonical_root) => Ok(()),
        Ok(_) => Err(HomeError::Escape(rel.to_owned())),
        Err(e) if existing.symlink_metadata().is_ok_and(|m| m.is_symlink()) => {
            Err(HomeError::Other(format!(
                "{rel:?} goes through a symbolic link that points nowhere ({e}); \
                 remove the link or use another path"
            )))
        }
        Err(e) => Err(HomeError::Other(format!("cannot check path {rel:?}: {e}"))),
    }
}

/// `path` relative to `root`, `/`-separated, for showing to the model.
pub(super) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Longest encoded room id kept verbatim; longer ones are cut and given a hash so the file name
/// stays under the usual 255-byte limit.
const MAX_ENCODED_ROOM: usize = 180;

/// See [`super::transcript_file_name`].
pub(super) fn transcript_file_name(room_id: &str) -> String {
    let mut encoded = String::with_capacity(room_id.len() + 8);
    for byte in room_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    // A room id of only dots would otherwise name a hidden file or `..`.jsonl lookalike.
    if encoded.starts_with('.') {
        encoded.replace_range(0..1, "%2E");
    }
    if encoded.len() > MAX_ENCODED_ROOM {
        let digest = Sha256::digest(room_id.as_bytes());
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        // Every char of `encoded` is ASCII, so any byte index is a char boundary.
        encoded.truncate(MAX_ENCODED_ROOM - hash.len() - 1);
        encoded.push('~');
        encoded.push_str(&hash);
    }
    encoded.push_str(".jsonl");
    encoded
}
