//! Long-term memory as files: what the twin remembers is Markdown in the home, and a
//! full-text index (SQLite FTS5, in memory) is built from those files when they are searched.
//! The files are the truth; the index is derived, never kept, never in git.
//!
//! Entries are the bullets (and other paragraphs) of:
//! - `agents/memory/long-term.md`, where `remember` appends (`- 2026-12-07: …`);
//! - dated notes and other Markdown files under `agents/memory/`;
//! - Matrix OS session summaries, `system/summaries/*.md`, the twin's own conversation
//!   summaries, `system/sessions/*.summary.md`, and OpenClaw-style `MEMORY.md` and
//!   `memory/*.md`, read as they are.
//!
//! `forget` removes entries from the files under `agents/memory/` (a git commit); summaries
//! are not memory the twin wrote and stay.

mod files;
mod index;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use self::{
    files::{MEMORY_DIR, MEMORY_FILE, collect, forget, remember},
    index::search,
};
use crate::home::Home;

/// Most entries a search returns.
pub const MAX_RESULTS: usize = 20;

/// One remembered thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file it is in, relative to the home.
    pub source: String,
    /// Its text (one bullet or paragraph, without the bullet mark).
    pub text: String,
}

/// Why memory could not be searched.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The in-memory index could not be built or queried.
    #[error("the memory index failed: {0}")]
    Index(String),
    /// A memory file could not be read or written.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
}

/// The entries of `home`'s memory most relevant to `text` (full-text search on its words),
/// then, when fewer than `limit` match, the newest entries of [`MEMORY_FILE`] (what was
/// remembered last, which a question in other words may still need); at most `limit`, none
/// when memory cannot be read (logged).
pub async fn relevant(home: Arc<Home>, text: &str, limit: usize) -> Vec<Entry> {
    let entries = match tokio::task::spawn_blocking(move || collect(&home)).await {
        Ok(entries) => entries,
        Err(err) => {
            tracing::warn!(%err, "cannot read the memory files");
            return Vec::new();
        }
    };
    if entries.is_empty() {
        return Vec::new();
    }
    let mut found = match search(&entries, text, limit).await {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(%err, "cannot search the memory");
            Vec::new()
        }
    };
    let newest: Vec<&Entry> = entries
        .iter()
        .rev()
        .filter(|e| e.source == MEMORY_FILE)
        .collect();
    for entry in newest {
        if found.len() >= limit {
            break;
        }
        if !found.contains(entry) {
            found.push(entry.clone());
        }
    }
    found
}
