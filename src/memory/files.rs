//! The memory files: reading their entries, appending one, removing some.

use super::Entry;
use crate::home::{Home, HomeError, MAX_FACT_BYTES};

/// Where `remember` writes.
pub const MEMORY_FILE: &str = "agents/memory/long-term.md";
/// The twin's memory folder (long-term memory and dated notes).
pub const MEMORY_DIR: &str = "agents/memory";
/// Other places memories are read from, as they are: Matrix OS session summaries, the
/// twin's own conversation summaries (`system/sessions/*.summary.md`) and OpenClaw-style
/// memory.
const READ_ONLY_DIRS: &[&str] = &["system/summaries", "system/sessions", "memory"];
const READ_ONLY_FILES: &[&str] = &["system/memory.md", "MEMORY.md"];
/// Most bytes of memory files read for one search.
const MAX_TOTAL_BYTES: u64 = 4 * 1024 * 1024;
/// Most entries one `forget` removes (more: the words are too vague).
const MAX_FORGET: usize = 10;

/// Every entry of `home`'s memory files (files that cannot be read are left out, logged).
pub fn collect(home: &Home) -> Vec<Entry> {
    let mut files: Vec<String> = Vec::new();
    for dir in std::iter::once(MEMORY_DIR).chain(READ_ONLY_DIRS.iter().copied()) {
        match home.list(dir, true) {
            Ok(listed) => files.extend(
                listed
                    .into_iter()
                    .filter(|e| !e.is_dir && e.path.ends_with(".md"))
                    .map(|e| e.path),
            ),
            Err(HomeError::NotFound(_)) => {}
            Err(err) => tracing::debug!(%err, dir, "cannot list a memory folder"),
        }
    }
    files.extend(READ_ONLY_FILES.iter().map(|f| (*f).to_owned()));
    let mut entries = Vec::new();
    let mut total = 0u64;
    for file in files {
        let text = match home.read_to_string(&file) {
            Ok(text) => text,
            Err(HomeError::NotFound(_)) => continue,
            Err(err) => {
                tracing::debug!(%err, file, "cannot read a memory file");
                continue;
            }
        };
        total += text.len() as u64;
        if total > MAX_TOTAL_BYTES {
            tracing::warn!(
                file,
                "memory files over {MAX_TOTAL_BYTES} bytes; the rest is not searched"
            );
            break;
        }
        entries.extend(parse(&text).into_iter().map(|text| Entry {
            source: file.clone(),
            text,
        }));
    }
    entries
}

/// The entries of one Markdown file: each list item, and each other paragraph; headings and
/// front matter are not entries.
pub(super) fn parse(text: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, entries: &mut Vec<String>| {
        let joined = paragraph.join(" ");
        let joined = joined.trim();
        if !joined.is_empty() {
            entries.push(joined.to_owned());
        }
        paragraph.clear();
    };
    let body = strip_front_matter(text);
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            flush(&mut paragraph, &mut entries);
        } else if let Some(item) = list_item(trimmed) {
            flush(&mut paragraph, &mut entries);
            paragraph.push(item);
        } else {
            paragraph.push(trimmed);
        }
    }
    flush(&mut paragraph, &mut entries);
    entries
}

fn strip_front_matter(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---\n") else {
        return text;
    };
    match rest.find("\n---") {
        Some(end) => rest[end + 4..].trim_start_matches(['-', '\n']),
        None => text,
    }
}

/// The text of a list item line (`- x`, `* x`, `+ x`, `1. x`).
fn list_item(line: &str) -> Option<&str> {
    for mark in ["- ", "* ", "+ "] {
        if let Some(item) = line.strip_prefix(mark) {
            return Some(item.trim());
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let rest = &line[digits..];
        if let Some(item) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(item.trim());
        }
    }
    None
}

/// The remembered text of an entry, without the `YYYY-MM-DD: ` date `remember` puts first.
fn undated(entry: &str) -> &str {
    let bytes = entry.as_bytes();
    let dated = bytes.len() > 12
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && &entry[10..12] == ": ";
    if dated { &entry[12..] } else { entry }
}

/// Appends `fact` to [`MEMORY_FILE`] as `- {today}: fact` (one line); `false` when it is
/// there already.
pub fn remember(home: &Home, fact: &str, today: &str) -> Result<bool, HomeError> {
    let fact = fact.split_whitespace().collect::<Vec<_>>().join(" ");
    if fact.is_empty() {
        return Err(HomeError::Other(
            "nothing to remember: the text is empty".into(),
        ));
    }
    if fact.len() > MAX_FACT_BYTES {
        return Err(HomeError::Other(format!(
            "that is {} bytes, over the {MAX_FACT_BYTES}-byte limit; remember one short \
             paragraph, or write longer notes to a file under data/",
            fact.len()
        )));
    }
    home.update_text(MEMORY_FILE, |old| {
        // The heading only: every other line of the file is an entry.
        let mut text = old.unwrap_or_else(|| "# Long-term memory\n\n".to_owned());
        let known = text
            .lines()
            .filter_map(|line| list_item(line.trim()))
            .any(|item| undated(item).eq_ignore_ascii_case(&fact));
        if known {
            return Ok((None, false));
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("- {today}: {fact}\n"));
        Ok((Some(text), true))
    })
}

/// Removes the entries of the files under [`MEMORY_DIR`] that contain `words` (ignoring
/// case); returns the removed entries with their files. Refuses words that match more than a
/// few entries, and empty words.
pub fn forget(home: &Home, words: &str) -> Result<Vec<Entry>, HomeError> {
    let needle = words
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if needle.chars().count() < 3 {
        return Err(HomeError::Other(
            "say what to forget in a few words (at least 3 characters)".into(),
        ));
    }
    let files: Vec<String> = match home.list(MEMORY_DIR, true) {
        Ok(listed) => listed
            .into_iter()
            .filter(|e| !e.is_dir && e.path.ends_with(".md"))
            .map(|e| e.path)
            .collect(),
        Err(HomeError::NotFound(_)) => Vec::new(),
        Err(err) => return Err(err),
    };
    let matches = |line: &str| {
        list_item(line.trim()).is_some_and(|item| item.to_lowercase().contains(&needle))
    };
    // Count first, so that vague words change nothing at all.
    let mut count = 0;
    for file in &files {
        if let Ok(text) = home.read_to_string(file) {
            count += text.lines().filter(|line| matches(line)).count();
        }
    }
    if count > MAX_FORGET {
        return Err(HomeError::Other(format!(
            "{count} entries contain those words; say more precisely what to forget"
        )));
    }
    let mut removed = Vec::new();
    for file in files {
        let gone = home.update_text(&file, |old| {
            let Some(old) = old else {
                return Ok((None, Vec::new()));
            };
            let mut gone = Vec::new();
            let mut kept = String::with_capacity(old.len());
            for line in old.split_inclusive('\n') {
                if matches(line) {
                    gone.push(list_item(line.trim()).unwrap_or_default().to_owned());
                } else {
                    kept.push_str(line);
                }
            }
            Ok(((!gone.is_empty()).then_some(kept), gone))
        })?;
        removed.extend(gone.into_iter().map(|text| Entry {
            source: file.clone(),
            text,
        }));
    }
    Ok(removed)
}
