//! Proposed changes of policy files: the owner's words in their own DM become a change the
//! model proposes (`propose_policy_change`), shown to the owner as a diff, applied only when
//! the owner confirms (`!ai confirm`). Content is checked when proposed and again when applied.

use similar::TextDiff;

use super::{AccessFile, RoomSettings, room::ROOMS_DIR};
use crate::{
    a2a::{MEETINGS_FILE, MeetingPolicy, MeetingsFile},
    home::{Home, HomeError},
    twin::{SETTINGS_FILE, TwinSettings},
};

/// Largest proposed content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// Most diff lines shown to the owner; a longer diff is cut with a note.
const MAX_DIFF_LINES: usize = 120;

/// Checks that `content` is a valid new content of the policy file `path` (normalized,
/// relative to the home): TOML files must parse as what they are.
pub fn check_content(path: &str, content: &str) -> Result<(), String> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(format!(
            "the new content is {} bytes; at most {MAX_CONTENT_BYTES} are accepted",
            content.len()
        ));
    }
    let lower = path.to_ascii_lowercase();
    if lower == super::ACCESS_FILE {
        AccessFile::parse(content, path).map_err(|e| e.to_string())?;
    } else if lower == MEETINGS_FILE {
        let file: MeetingsFile =
            toml::from_str(content).map_err(|e| format!("{path}: {}", e.to_string().trim_end()))?;
        MeetingPolicy::from_file(&file).map_err(|e| e.to_string())?;
    } else if lower == SETTINGS_FILE {
        toml::from_str::<TwinSettings>(content)
            .map_err(|e| format!("{path}: {}", e.to_string().trim_end()))?;
    } else if lower.starts_with(&format!("{ROOMS_DIR}/")) {
        if !lower.ends_with(".toml") {
            return Err(format!("files in {ROOMS_DIR}/ are .toml room settings"));
        }
        RoomSettings::parse(content, path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The policy file `rel` names, normalized (`./`, `..`, doubled slashes resolved); `None`
/// when `rel` is not itself a policy file (a link to one does not count: name the file).
pub fn policy_file(home: &Home, rel: &str) -> Result<Option<String>, HomeError> {
    let normalized = home.normalized(rel)?;
    if normalized.is_empty() || !home.is_policy_path(&normalized)? {
        return Ok(None);
    }
    let path = home.resolve(&normalized)?;
    if path
        .symlink_metadata()
        .is_ok_and(|meta| meta.file_type().is_symlink())
    {
        return Ok(None);
    }
    Ok(Some(normalized))
}

/// The version of a policy file's content that a proposal is based on: SHA-256 in hex, or
/// empty for a file that does not exist.
pub fn base_of(content: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    content.map_or_else(String::new, |text| {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The change from `old` to `new` of `path` as a unified diff, at most [`MAX_DIFF_LINES`]
/// lines.
pub fn diff(path: &str, old: &str, new: &str) -> String {
    let text = TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= MAX_DIFF_LINES {
        return text;
    }
    format!(
        "{}\n… ({} more lines)\n",
        lines[..MAX_DIFF_LINES].join("\n"),
        lines.len() - MAX_DIFF_LINES
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open_or_create(&dir.path().join("h"), None, "@alice:x").unwrap();
        (dir, home)
    }

    #[test]
    fn only_policy_files_themselves_can_be_proposed() {
        let (_dir, home) = home();
        assert_eq!(
            policy_file(&home, "./system//access.toml")
                .unwrap()
                .as_deref(),
            Some("system/access.toml")
        );
        assert_eq!(
            policy_file(&home, "data/../system/meetings.toml")
                .unwrap()
                .as_deref(),
            Some("system/meetings.toml")
        );
        assert_eq!(policy_file(&home, "notes/todo.md").unwrap(), None);
        assert!(policy_file(&home, "../elsewhere").is_err());
    }

    #[test]
    fn contents_are_checked_as_what_they_are() {
        assert!(check_content("system/access.toml", "dm = [\"@bob:x\"]\n").is_ok());
        assert!(check_content("system/access.toml", "dm = [").is_err());
        assert!(check_content("system/access.toml", "nonsense_key = 1").is_err());
        assert!(check_content("system/settings.toml", "model = \"m\"\n").is_ok());
        assert!(check_content("system/settings.toml", "model = 3\n").is_err());
        assert!(check_content("system/rooms/a.toml", "unprompted = true\n").is_ok());
        assert!(check_content("system/rooms/a.md", "x").is_err());
        assert!(check_content("system/public/profile.md", "Hello").is_ok());
        assert!(check_content("system/public/profile.md", &"x".repeat(70_000)).is_err());
    }

    #[test]
    fn diffs_are_unified_and_bounded() {
        let shown = diff("system/access.toml", "dm = []\n", "dm = [\"@bob:x\"]\n");
        assert!(shown.contains("--- a/system/access.toml"), "{shown}");
        assert!(shown.contains("-dm = []"), "{shown}");
        assert!(shown.contains("+dm = [\"@bob:x\"]"), "{shown}");
        let long: String = (0..500).map(|i| format!("line {i}\n")).collect();
        let cut = diff("system/public/a.md", "", &long);
        assert!(cut.lines().count() <= 122, "{}", cut.lines().count());
        assert!(cut.contains("more lines"));
    }
}
