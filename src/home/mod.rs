//! The owner's file home: plain files under `<home.dir>/<owner>/`, versioned with git.
//!
//! SKELETON: signatures are the contract other modules code against; bodies are filled in by
//! the home work item. All methods are blocking (filesystem + git2): async callers use
//! `tokio::task::spawn_blocking`.

use std::path::{Path, PathBuf};

/// An error from the file home, phrased so it can be shown to the model as a tool error.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// The path would leave the home (`..`, absolute, symlink out, or inside `.git`).
    #[error("path {0:?} is outside your home; use a path relative to the home, like notes/todo.md")]
    Escape(String),
    /// No such file or folder.
    #[error("{0:?} does not exist")]
    NotFound(String),
    /// `edit_file`: the text to replace was not found / found more than once.
    #[error("{0}")]
    Edit(String),
    /// Something else (I/O, git), with context.
    #[error("{0}")]
    Other(String),
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Path relative to the home, `/`-separated.
    pub path: String,
    /// Whether it is a folder.
    pub is_dir: bool,
    /// Size in bytes (0 for folders).
    pub size: u64,
}

/// One line matched by a search.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SearchHit {
    /// Path relative to the home.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// The line's text (trimmed to a sane length).
    pub text: String,
}

/// A skill's front matter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkillMeta {
    /// `name:` (the file stem when absent).
    pub name: String,
    /// `description:`.
    pub description: String,
    /// Path relative to the home.
    pub path: String,
}

/// An owner's home.
#[derive(Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Opens the home at `root`, creating it from `template` (or the built-in template when
    /// `None`) with a first git commit when it does not exist yet.
    pub fn open_or_create(root: &Path, template: Option<&Path>, owner_id: &str) -> Result<Self, HomeError> {
        let _ = owner_id;
        let _ = template;
        Ok(Self { root: root.to_path_buf() })
    }

    /// The home's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a model-supplied relative path, refusing anything that leaves the home.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, HomeError> {
        todo!("{rel}")
    }

    /// Reads a UTF-8 file.
    pub fn read_to_string(&self, rel: &str) -> Result<String, HomeError> {
        todo!("{rel}")
    }

    /// Writes a file atomically (temp file + rename), creating parent folders.
    pub fn write_atomic(&self, rel: &str, contents: &[u8]) -> Result<(), HomeError> {
        todo!("{rel}{contents:?}")
    }

    /// Replaces the one occurrence of `old` with `new`; an error when absent or not unique.
    pub fn edit(&self, rel: &str, old: &str, new: &str) -> Result<(), HomeError> {
        todo!("{rel}{old}{new}")
    }

    /// Lists a folder (`""` is the home itself), recursively when asked; `.git` is never listed.
    pub fn list(&self, rel: &str, recursive: bool) -> Result<Vec<Entry>, HomeError> {
        todo!("{rel}{recursive}")
    }

    /// Case-insensitive substring search over text files under `rel`, at most `max` hits.
    pub fn search(&self, needle: &str, rel: &str, max: usize) -> Result<Vec<SearchHit>, HomeError> {
        todo!("{needle}{rel}{max}")
    }

    /// Front matter of every `agents/skills/*.md`.
    pub fn skills(&self) -> Result<Vec<SkillMeta>, HomeError> {
        todo!()
    }

    /// Full text of the skill called `name`.
    pub fn load_skill(&self, name: &str) -> Result<String, HomeError> {
        todo!("{name}")
    }

    /// Appends a fact as a bullet to `system/user.md`.
    pub fn remember(&self, fact: &str) -> Result<(), HomeError> {
        todo!("{fact}")
    }

    /// Appends one JSON line to `system/sessions/<room>.jsonl` (room id made filename-safe).
    pub fn append_transcript(&self, room_id: &str, line: &serde_json::Value) -> Result<(), HomeError> {
        todo!("{room_id}{line}")
    }

    /// The twin's display name from `system/identity.md` front matter, when set.
    pub fn display_name(&self) -> Result<Option<String>, HomeError> {
        todo!()
    }

    /// Commits every change in the home (`git add -A`) with `message`; `None` when clean.
    pub fn commit(&self, message: &str) -> Result<Option<String>, HomeError> {
        todo!("{message}")
    }
}
