//! The owner's files, kept in their home: `data/inbox/<date>-<name>`, committed.

use crate::home::{Home, HomeError};

/// The folder files land in.
pub const INBOX: &str = "data/inbox";

/// Longest file name kept (before the date), in characters.
const MAX_NAME_CHARS: usize = 80;

/// A sender's file name made safe for the home: no folders, no leading dots, no control or
/// path characters, bounded, never empty.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else if c.is_whitespace() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let (stem, extension) = match trimmed.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 10 => (stem, Some(ext)),
        _ => (trimmed, None),
    };
    let stem: String = stem.chars().take(MAX_NAME_CHARS).collect();
    let stem = stem.trim();
    let stem = if stem.is_empty() { "file" } else { stem };
    match extension {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem.to_owned(),
    }
}

/// Saves `bytes` as `data/inbox/<date>-<name>` (`-2`, `-3`, ... before the extension when
/// another file has the name; the same bytes again reuse their file) and commits it. The
/// answer is the file's path in the home.
pub fn save(
    home: &Home,
    date: &str,
    name: &str,
    bytes: &[u8],
    room: &str,
) -> Result<String, HomeError> {
    let name = safe_name(name);
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_owned(), format!(".{ext}")),
        None => (name.clone(), String::new()),
    };
    let mut path = String::new();
    for n in 1..=1000u32 {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        path = format!("{INBOX}/{date}-{stem}{suffix}{extension}");
        match std::fs::read(home.resolve(&path)?) {
            Ok(existing) if existing == bytes => return Ok(path),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    home.write_atomic(&path, bytes)?;
    home.commit(&format!("inbox: {path} (sent in room {room})"))?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_inbox_or_hide() {
        assert_eq!(safe_name("../../system/access.toml"), "access.toml");
        assert_eq!(safe_name("C:\\x\\evil.md"), "evil.md");
        assert_eq!(safe_name(".gitignore"), "gitignore");
        assert_eq!(safe_name("  "), "file");
        assert_eq!(safe_name("a\nb\u{7}.txt"), "a_b_.txt");
        assert_eq!(safe_name("Receipt 2026.pdf"), "Receipt 2026.pdf");
        assert!(safe_name(&"x".repeat(500)).chars().count() <= MAX_NAME_CHARS);
    }
}
