//! Keeping a public turn's file access inside `system/public/`.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

use super::PUBLIC_DIR;
use crate::home::{Home, HomeError};

/// Resolves a model-supplied path for a public turn, refusing anything outside
/// `system/public/`; returns the path to use relative to the home, `/`-separated.
///
/// Three checks, all of which must pass: the path, normalized without touching the disk, lies
/// under `system/public`; the home's normal confinement ([`Home::resolve`]) accepts it; and
/// what it really is, with symlinks resolved, still lies under the home's real
/// `system/public` (so a link in there to `system/user.md` leads nowhere). A path that
/// exists comes back with its links resolved, so that what is opened is what was checked.
pub(crate) fn confine(home: &Home, rel: &str) -> Result<String, HomeError> {
    let lexical = normalize(rel).ok_or_else(|| not_public(rel))?;
    if !lexical.starts_with(PUBLIC_DIR) {
        return Err(not_public(rel));
    }
    let path = home.resolve(rel)?;
    let public = home.root().join(PUBLIC_DIR);
    let real_root = fs::canonicalize(home.root())
        .map_err(|e| HomeError::Other(format!("cannot open your home folder: {e}")))?;
    let real_public = real_root.join(PUBLIC_DIR);
    let Some(existing) = path.ancestors().find(|p| p.symlink_metadata().is_ok()) else {
        return Err(HomeError::NotFound(rel.to_owned()));
    };
    if !existing.starts_with(&public) {
        // `system/public` itself is missing.
        return Err(HomeError::NotFound(rel.to_owned()));
    }
    let real = fs::canonicalize(existing).map_err(|_| not_public(rel))?;
    if !real.starts_with(&real_public) {
        return Err(not_public(rel));
    }
    if existing == path {
        Ok(slash_path(real.strip_prefix(&real_root).unwrap_or(&real)))
    } else {
        Ok(slash_path(&lexical))
    }
}

/// Whether `rel` (relative to the home) passes [`confine`].
pub(crate) fn is_public(home: &Home, rel: &str) -> bool {
    confine(home, rel).is_ok()
}

/// Reads `rel` only when no symlink is involved: the self files of a public prompt must be
/// the files they are named as, not a link to the owner's private ones.
pub(crate) fn read_unlinked(home: &Home, rel: &str) -> Result<String, HomeError> {
    let path = home.resolve(rel)?;
    let real_root = fs::canonicalize(home.root())
        .map_err(|e| HomeError::Other(format!("cannot open your home folder: {e}")))?;
    let real = fs::canonicalize(&path).map_err(|_| HomeError::NotFound(rel.to_owned()))?;
    let expected = normalize(rel).map(|lexical| real_root.join(lexical));
    if expected.as_deref() != Some(real.as_path()) {
        return Err(HomeError::Escape(rel.to_owned()));
    }
    home.read_to_string(rel)
}

fn not_public(rel: &str) -> HomeError {
    HomeError::Other(format!(
        "{rel:?} is not available in this conversation: only the public files under \
         {PUBLIC_DIR}/ can be read here, e.g. {PUBLIC_DIR}/profile.md"
    ))
}

/// `rel` with `.` and `..` worked out, or `None` when it is absolute or climbs out.
fn normalize(rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(part) => parts.push(part),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

fn slash_path(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}
