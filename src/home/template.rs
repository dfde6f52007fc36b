//! Creating a home from a template.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use include_dir::{Dir, DirEntry, include_dir};

use super::{HomeError, git};

/// The repository's `home-template/`, built into the binary so a fresh install needs no files.
static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/home-template");

/// Message of a home's first commit.
pub(super) const FIRST_COMMIT: &str = "Create home from template";

/// Placeholder values for a template's `.md` files.
struct Owner<'a> {
    id: &'a str,
    name: &'a str,
}

impl<'a> Owner<'a> {
    fn new(owner_id: &'a str) -> Self {
        Self {
            id: owner_id,
            name: owner_name(owner_id),
        }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{{owner_id}}", self.id)
            .replace("{{owner_name}}", self.name)
    }
}

/// The localpart of an MXID (`@alice:example.org` -> `alice`), what `{{owner_name}}` becomes.
pub(super) fn owner_name(owner_id: &str) -> &str {
    let local = owner_id.strip_prefix('@').unwrap_or(owner_id);
    local.split_once(':').map_or(local, |(name, _)| name)
}

fn other(what: &str, path: &Path, e: &io::Error) -> HomeError {
    HomeError::Other(format!("cannot {what} {}: {e}", path.display()))
}

/// Makes sure a home exists at `root`; see [`super::Home::open_or_create`].
pub(super) fn ensure_home(
    root: &Path,
    template: Option<&Path>,
    owner_id: &str,
) -> Result<(), HomeError> {
    if root.join(".git").exists() {
        // Homes made before homes were private: close them now.
        return restrict(root);
    }
    let owner = Owner::new(owner_id);
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_fresh(root, template, &owner),
        // A folder prepared by hand (or left by an interrupted creation): fill it in without
        // overwriting anything that is already there.
        Ok(meta) if meta.is_dir() => {
            restrict(root)?;
            populate(root, template, &owner)
        }
        Ok(_) => Err(HomeError::Other(format!(
            "{} exists but is not a folder",
            root.display()
        ))),
        Err(e) => Err(other("open home", root, &e)),
    }
}

/// The text of `system/identity.md` that a home created from `template` would hold, filled in
/// for `owner_id` (so a twin gets its name before its home exists).
pub(super) fn template_identity(
    template: Option<&Path>,
    owner_id: &str,
) -> Result<Option<String>, HomeError> {
    let owner = Owner::new(owner_id);
    let raw = match template {
        Some(template) => match fs::read_to_string(template.join(super::skills::IDENTITY_FILE)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(other("read", template, &e)),
        },
        None => match BUILTIN
            .get_file(super::skills::IDENTITY_FILE)
            .and_then(|file| file.contents_utf8())
        {
            Some(text) => text.to_owned(),
            None => return Ok(None),
        },
    };
    Ok(Some(owner.fill(&raw)))
}

/// Builds the home in a hidden sibling folder and renames it into place, so nobody ever sees a
/// half-made home, and two creators racing for the same home cannot mix their files.
fn create_fresh(root: &Path, template: Option<&Path>, owner: &Owner<'_>) -> Result<(), HomeError> {
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| other("create", parent, &e))?;
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.creating-"))
        .tempdir_in(parent)
        .map_err(|e| other("create a folder in", parent, &e))?;
    // Private before anything is in it: only the service's user reads an owner's home.
    restrict(staging.path())?;
    populate(staging.path(), template, owner)?;
    match fs::rename(staging.path(), root) {
        Ok(()) => {
            // Already moved away; keeping stops the destructor from trying to delete it.
            let _ = staging.keep();
            Ok(())
        }
        // Lost a race against another creator of the same home: theirs is as good as ours.
        Err(_) if root.join(".git").exists() => Ok(()),
        Err(e) => Err(other("move the new home to", root, &e)),
    }
}

/// Makes a home folder readable by the service's user only (mode 0700 on Unix).
fn restrict(dir: &Path) -> Result<(), HomeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o077 == 0);
        if !private {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| other("make private", dir, &e))?;
        }
    }
    Ok(())
}

/// Copies the template into `dir`, skipping files that exist, then makes the first commit.
fn populate(dir: &Path, template: Option<&Path>, owner: &Owner<'_>) -> Result<(), HomeError> {
    match template {
        Some(template) => {
            if !template.is_dir() {
                return Err(HomeError::Other(format!(
                    "the home template {} is not a folder; fix home.template in the config",
                    template.display()
                )));
            }
            copy_folder(template, dir, owner)?;
        }
        None => copy_builtin(&BUILTIN, dir, owner)?,
    }
    git::init(dir)?;
    git::commit_all(dir, FIRST_COMMIT)?;
    Ok(())
}

fn copy_builtin(from: &Dir<'static>, to: &Path, owner: &Owner<'_>) -> Result<(), HomeError> {
    for entry in from.entries() {
        let target = to.join(entry.path());
        match entry {
            DirEntry::Dir(dir) => {
                fs::create_dir_all(&target).map_err(|e| other("create", &target, &e))?;
                copy_builtin(dir, to, owner)?;
            }
            DirEntry::File(file) => write_new(&target, file.contents(), owner)?,
        }
    }
    Ok(())
}

/// Copies a template folder; `.git` and symlinks are skipped, since neither belongs in a new
/// owner's home.
fn copy_folder(from: &Path, to: &Path, owner: &Owner<'_>) -> Result<(), HomeError> {
    fs::create_dir_all(to).map_err(|e| other("create", to, &e))?;
    let read = fs::read_dir(from).map_err(|e| other("read the template folder", from, &e))?;
    for entry in read {
        let entry = entry.map_err(|e| other("read the template folder", from, &e))?;
        if entry.file_name() == ".git" {
            continue;
        }
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| other("read", &source, &e))?;
        if kind.is_dir() {
            copy_folder(&source, &target, owner)?;
        } else if kind.is_file() {
            let bytes = fs::read(&source).map_err(|e| other("read", &source, &e))?;
            write_new(&target, &bytes, owner)?;
        }
    }
    Ok(())
}

/// Writes a template file, filling placeholders in Markdown; an existing file is left alone.
fn write_new(target: &Path, bytes: &[u8], owner: &Owner<'_>) -> Result<(), HomeError> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| other("create", parent, &e))?;
    }
    let is_markdown = target.extension().is_some_and(|ext| ext == "md");
    let filled;
    let bytes = match std::str::from_utf8(bytes) {
        Ok(text) if is_markdown => {
            filled = owner.fill(text);
            filled.as_bytes()
        }
        _ => bytes,
    };
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
    {
        Ok(mut file) => file
            .write_all(bytes)
            .map_err(|e| other("write", target, &e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(other("create", target, &e)),
    }
}
