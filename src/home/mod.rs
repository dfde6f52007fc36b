//! The owner's file home: plain files under `<home.dir>/<owner>/`, versioned with git.
//!
//! Every path the model supplies goes through [`Home::resolve`], which keeps it inside the home
//! and out of `.git`. Mutations and commits are serialized by an internal lock so two rooms of
//! the same owner can share one `Arc<Home>`. All methods are blocking (filesystem + git2):
//! async callers use `tokio::task::spawn_blocking`.

mod git;
mod ops;
mod paths;
mod policy_files;
mod skills;
mod template;
mod walk;

pub use self::policy_files::{POLICY_FILES, POLICY_FOLDERS, POLICY_NAMES};

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Largest file [`Home::read_to_string`] returns, so one read cannot flood the model's context.
pub const MAX_READ_BYTES: u64 = 256 * 1024;
/// Most entries [`Home::list`] returns; a listing of exactly this length was cut short.
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Longest fact [`Home::remember`] accepts, in bytes.
pub const MAX_FACT_BYTES: usize = 2000;

/// An error from the file home, phrased so it can be shown to the model as a tool error.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// The path would leave the home (`..`, absolute, symlink out, or inside `.git`).
    #[error(
        "path {0:?} is not allowed: paths must stay inside your home and out of .git; \
         use a path relative to the home, like data/notes/ideas.md"
    )]
    Escape(String),
    /// No such file or folder.
    #[error("{0:?} does not exist; use list_files to see what is there")]
    NotFound(String),
    /// `edit_file`: the text to replace was not found / found more than once.
    #[error("{0}")]
    Edit(String),
    /// Something else (I/O, git, limits), with context.
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
    /// `description:` (the first line of the file when there is no front matter).
    pub description: String,
    /// Path relative to the home.
    pub path: String,
}

/// An owner's home.
#[derive(Debug)]
pub struct Home {
    root: PathBuf,
    /// `root` with symlinks resolved, what [`Home::resolve`] checks containment against.
    canonical_root: PathBuf,
    /// The owner's MXID, as given to [`Home::open_or_create`].
    owner_id: String,
    /// Serializes mutations and commits: git's index must never be touched by two threads at
    /// once, and read-modify-write edits must not interleave.
    lock: Mutex<()>,
}

impl Home {
    /// Opens the home at `root`, creating it from `template` (or the built-in template when
    /// `None`) with a first git commit when it does not exist yet.
    ///
    /// `owner_id` is the owner's MXID (`@alice:example.org`); it replaces `{{owner_id}}` and its
    /// localpart replaces `{{owner_name}}` in the template's `.md` files. Opening an existing
    /// home changes nothing.
    pub fn open_or_create(
        root: &Path,
        template: Option<&Path>,
        owner_id: &str,
    ) -> Result<Self, HomeError> {
        template::ensure_home(root, template, owner_id)?;
        let canonical_root = std::fs::canonicalize(root)
            .map_err(|e| HomeError::Other(format!("cannot open home {}: {e}", root.display())))?;
        Ok(Self {
            root: root.to_path_buf(),
            canonical_root,
            owner_id: owner_id.to_owned(),
            lock: Mutex::new(()),
        })
    }

    /// The home's root with symbolic links resolved.
    pub(crate) fn canonical_root(&self) -> &Path {
        &self.canonical_root
    }

    /// The home's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The owner's MXID (`@alice:example.org`), as given to [`Home::open_or_create`].
    pub fn owner_id(&self) -> &str {
        &self.owner_id
    }

    /// The owner's name as the template's `{{owner_name}}` spells it: the MXID's localpart.
    pub fn owner_name(&self) -> &str {
        template::owner_name(&self.owner_id)
    }

    /// Resolves a model-supplied relative path, refusing anything that leaves the home.
    ///
    /// `""` and `"."` are the home itself; `..` is allowed while it stays inside; absolute
    /// paths, `.git` and symlinks pointing outside are refused with [`HomeError::Escape`].
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, HomeError> {
        paths::resolve(&self.root, &self.canonical_root, rel)
    }

    /// `rel` resolved inside the home and written back relative to it, `/`-separated (`""`
    /// for the home itself); the same errors as [`Home::resolve`].
    pub fn normalized(&self, rel: &str) -> Result<String, HomeError> {
        Ok(paths::relative(&self.root, &self.resolve(rel)?))
    }

    /// Reads a UTF-8 text file of at most [`MAX_READ_BYTES`].
    pub fn read_to_string(&self, rel: &str) -> Result<String, HomeError> {
        ops::read_text(&self.resolve(rel)?, rel)
    }

    /// Reads the bytes of a file of at most `max_bytes`; a larger one is refused with its
    /// size and `purpose` (e.g. `"reading a PDF"`).
    pub fn read_bytes(
        &self,
        rel: &str,
        max_bytes: u64,
        purpose: &str,
    ) -> Result<Vec<u8>, HomeError> {
        ops::read_bounded(&self.resolve(rel)?, rel, max_bytes, |size| {
            HomeError::Other(format!(
                "{rel:?} is {size} bytes, over the {max_bytes}-byte limit for {purpose}"
            ))
        })
    }

    /// Writes a file atomically (temp file + fsync + rename), creating parent folders.
    pub fn write_atomic(&self, rel: &str, contents: &[u8]) -> Result<(), HomeError> {
        let path = self.resolve(rel)?;
        let _guard = self.guard();
        ops::write_atomic(&self.root, &path, rel, contents)
    }

    /// Reads `rel` (`None` when it does not exist), lets `change` make its new text, and writes
    /// that atomically, all under the home's lock (no other writer in between). `change`
    /// returning `None` leaves the file as it is.
    pub fn update_text<T>(
        &self,
        rel: &str,
        change: impl FnOnce(Option<String>) -> Result<(Option<String>, T), HomeError>,
    ) -> Result<T, HomeError> {
        let path = self.resolve(rel)?;
        let _guard = self.guard();
        let old = match ops::read_text(&path, rel) {
            Ok(text) => Some(text),
            Err(HomeError::NotFound(_)) => None,
            Err(err) => return Err(err),
        };
        let (new, result) = change(old)?;
        if let Some(new) = new {
            ops::write_atomic(&self.root, &path, rel, new.as_bytes())?;
        }
        Ok(result)
    }

    /// Replaces the one occurrence of `old` with `new`; an error when absent or not unique.
    pub fn edit(&self, rel: &str, old: &str, new: &str) -> Result<(), HomeError> {
        let path = self.resolve(rel)?;
        let _guard = self.guard();
        ops::edit(&self.root, &path, rel, old, new)
    }

    /// Lists a folder (`""` is the home itself), recursively when asked; `.git` is never listed.
    ///
    /// Entries are sorted by path; at most [`MAX_LIST_ENTRIES`] are returned. Listing a file
    /// returns just that file. Symlinked folders are listed but not descended into.
    pub fn list(&self, rel: &str, recursive: bool) -> Result<Vec<Entry>, HomeError> {
        walk::list(&self.root, &self.resolve(rel)?, rel, recursive)
    }

    /// Case-insensitive substring search over text files under `rel`, at most `max` hits.
    ///
    /// Binary and non-UTF-8 files and `.git` are skipped.
    pub fn search(&self, needle: &str, rel: &str, max: usize) -> Result<Vec<SearchHit>, HomeError> {
        walk::search(&self.root, &self.resolve(rel)?, rel, needle, max)
    }

    /// Front matter of every `agents/skills/*.md`, sorted by file name.
    pub fn skills(&self) -> Result<Vec<SkillMeta>, HomeError> {
        skills::list(&self.root)
    }

    /// Full text of the skill called `name` (its front-matter name or file stem).
    pub fn load_skill(&self, name: &str) -> Result<String, HomeError> {
        skills::load(&self.root, name)
    }

    /// Appends a fact as a bullet to `system/user.md`, creating it when missing.
    ///
    /// The fact is trimmed and kept to one line; empty facts and facts over
    /// [`MAX_FACT_BYTES`] are refused, and a fact already recorded is not added twice.
    pub fn remember(&self, fact: &str) -> Result<(), HomeError> {
        let _guard = self.guard();
        ops::remember(&self.root, fact)
    }

    /// Appends one JSON line to `system/sessions/<room>.jsonl` (room id made filename-safe,
    /// see [`transcript_file_name`]).
    pub fn append_transcript(
        &self,
        room_id: &str,
        line: &serde_json::Value,
    ) -> Result<(), HomeError> {
        let _guard = self.guard();
        ops::append_transcript(&self.root, room_id, line)
    }

    /// Commits every change in the home (`git add -A`, honoring `.gitignore`) with `message`;
    /// returns the new commit id in hex, or `None` when nothing changed.
    pub fn commit(&self, message: &str) -> Result<Option<String>, HomeError> {
        let _guard = self.guard();
        git::commit_all(&self.root, message)
    }

    /// The twin's display name: `display_name:` in the front matter of `system/identity.md`;
    /// `None` when the file, the front matter or the field is missing or empty.
    pub fn display_name(&self) -> Result<Option<String>, HomeError> {
        skills::display_name(&self.root)
    }

    /// The display name a home at `root` gives its twin, read without creating the home: from
    /// the home when it exists, else from the template it would be created from.
    pub fn display_name_at(
        root: &Path,
        template: Option<&Path>,
        owner_id: &str,
    ) -> Result<Option<String>, HomeError> {
        if root.join(".git").exists() {
            return skills::display_name(root);
        }
        match template::template_identity(template, owner_id)? {
            Some(text) => skills::display_name_in(&text),
            None => Ok(None),
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, so a panic while it was held leaves nothing inconsistent.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The file name (without folder) a room's transcript is stored under: bytes outside
/// `[A-Za-z0-9._-]` are percent-encoded (`!abc:example.org` -> `%21abc%3Aexample.org.jsonl`),
/// so distinct rooms never share a file.
pub fn transcript_file_name(room_id: &str) -> String {
    paths::transcript_file_name(room_id)
}
