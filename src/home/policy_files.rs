//! Policy files: the files that decide what the twin may do (who may talk with it, what rooms
//! allow, which meetings it accepts, its settings, what strangers may read, what git keeps).
//!
//! The model's tools never write them, whoever the turn is for: a stranger's words in a shared
//! room reach the model, and the model must not be able to turn them into policy. They change
//! by the owner's `!ai` commands, which write through [`super::Home`] directly.

use std::path::Path;

use super::{Home, HomeError, paths};

/// Policy files, relative to the home.
pub const POLICY_FILES: &[&str] = &[
    "system/access.toml",
    "system/bridges.toml",
    "system/meetings.toml",
    "system/settings.toml",
];

/// File names that are policy wherever they are: a `.gitignore` in any folder decides what
/// git keeps (and could stop ignoring a secret).
pub const POLICY_NAMES: &[&str] = &[".gitignore", ".gitattributes"];

/// Folders whose every file is policy.
pub const POLICY_FOLDERS: &[&str] = &["system/rooms", "system/public"];

impl Home {
    /// Whether `rel` is a policy file or inside a policy folder: after normalizing the path
    /// (`./`, `..`, doubled slashes) and after following symbolic links inside the home, and
    /// ignoring ASCII case (a case-insensitive file system would open the same file).
    pub fn is_policy_path(&self, rel: &str) -> Result<bool, HomeError> {
        let path = self.resolve(rel)?;
        if is_policy(&paths::relative(self.root(), &path)) {
            return Ok(true);
        }
        // Through links: where the longest existing part of the path really is.
        let Some(existing) = path.ancestors().find(|p| p.symlink_metadata().is_ok()) else {
            return Ok(false);
        };
        let Ok(real) = std::fs::canonicalize(existing) else {
            return Ok(false);
        };
        let rest = path.strip_prefix(existing).unwrap_or(Path::new(""));
        Ok(is_policy(&paths::relative(
            self.canonical_root(),
            &real.join(rest),
        )))
    }
}

/// Whether a normalized, `/`-separated path relative to the home is policy.
fn is_policy(rel: &str) -> bool {
    let rel = rel.trim_end_matches('/');
    let name = rel.rsplit('/').next().unwrap_or(rel);
    POLICY_FILES
        .iter()
        .any(|file| rel.eq_ignore_ascii_case(file))
        || POLICY_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
        || POLICY_FOLDERS.iter().any(|folder| {
            rel.eq_ignore_ascii_case(folder)
                || (rel.len() > folder.len()
                    && rel.as_bytes()[folder.len()] == b'/'
                    && rel[..folder.len()].eq_ignore_ascii_case(folder))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::is_policy;

    #[test]
    fn policy_paths_are_recognized_in_any_case() {
        for rel in [
            "system/access.toml",
            "SYSTEM/Access.TOML",
            "system/rooms",
            "system/rooms/!abc:x.toml",
            "system/public/profile.md",
            ".gitignore",
            "data/.gitignore",
            "system/meetings.toml",
            "system/settings.toml",
        ] {
            assert!(is_policy(rel), "{rel}");
        }
        for rel in [
            "system/user.md",
            "system/roomsx/a",
            "notes/system/access.toml",
            "system/publicity.md",
            "data/gitignore.md",
        ] {
            assert!(!is_policy(rel), "{rel}");
        }
    }
}
