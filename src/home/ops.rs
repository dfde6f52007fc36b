//! Reading and writing files in the home. Paths arrive already resolved; `rel` is what the
//! model asked for, used in messages so it recognizes its own request.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::paths::{relative, transcript_file_name};
use super::{HomeError, MAX_FACT_BYTES, MAX_READ_BYTES};

/// Where [`remember`] writes.
const USER_FILE: &str = "system/user.md";
/// Where [`append_transcript`] writes.
const SESSIONS_DIR: &str = "system/sessions";
/// Suffix of in-flight temp files; the template's `.gitignore` ignores it so a crash never
/// gets a half-written file committed.
const TEMP_SUFFIX: &str = ".matrix-os-tmp";

/// `rel` shown to the model, with the home itself spelled out rather than as `""`.
pub(super) fn shown(rel: &str) -> &str {
    if rel.is_empty() || rel == "." {
        "the home folder"
    } else {
        rel
    }
}

pub(super) fn io_error(action: &str, rel: &str, e: &io::Error) -> HomeError {
    match e.kind() {
        io::ErrorKind::NotFound => HomeError::NotFound(rel.to_owned()),
        _ => HomeError::Other(format!("cannot {action} {:?}: {e}", shown(rel))),
    }
}

pub(super) fn read_text(path: &Path, rel: &str) -> Result<String, HomeError> {
    let bytes = read_bounded(path, rel, MAX_READ_BYTES, |size| {
        HomeError::Other(format!(
            "{rel:?} is {size} bytes, over the {} KiB read limit; use search to find the part you \
             need",
            MAX_READ_BYTES / 1024
        ))
    })?;
    text_from_bytes(bytes).ok_or_else(|| {
        HomeError::Other(format!(
            "{rel:?} is not a text file (it is binary or not UTF-8), so it cannot be read as text"
        ))
    })
}

/// The bytes of the file at `path`, at most `max` of them: a folder or a file over `max` is
/// refused (`too_large` says how, given the file's size).
pub(super) fn read_bounded(
    path: &Path,
    rel: &str,
    max: u64,
    too_large: impl FnOnce(u64) -> HomeError,
) -> Result<Vec<u8>, HomeError> {
    let meta = fs::metadata(path).map_err(|e| io_error("read", rel, &e))?;
    if meta.is_dir() {
        return Err(HomeError::Other(format!(
            "{:?} is a folder, not a file; use list_files to see what it contains",
            shown(rel)
        )));
    }
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::new();
    // The `take` guards against a file that grew after the size check.
    fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| io_error("read", rel, &e))?;
    Ok(bytes)
}

/// The bytes as text, or `None` when they look binary (a NUL byte) or are not UTF-8.
pub(super) fn text_from_bytes(bytes: Vec<u8>) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

pub(super) fn write_atomic(
    root: &Path,
    path: &Path,
    rel: &str,
    contents: &[u8],
) -> Result<(), HomeError> {
    if path == root || path.is_dir() {
        let folder = relative(root, path);
        let example = if folder.is_empty() {
            "notes.md".to_owned()
        } else {
            format!("{folder}/notes.md")
        };
        return Err(HomeError::Other(format!(
            "{:?} is a folder; give the path of a file inside it, like {example}",
            shown(rel)
        )));
    }
    let parent = path.parent().unwrap_or(root);
    fs::create_dir_all(parent).map_err(|e| {
        HomeError::Other(format!(
            "cannot create the folder {:?} for {rel:?} (is part of it a file?): {e}",
            relative(root, parent)
        ))
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A new file is the owner's private data: 0600 (the home itself is 0700). A rewritten
        // file keeps its own mode (including an executable bit).
        let permissions = fs::metadata(path)
            .map(|m| m.permissions())
            .unwrap_or_else(|_| fs::Permissions::from_mode(0o600));
        builder.permissions(permissions);
    }
    let write_err = |e: io::Error| HomeError::Other(format!("cannot write {rel:?}: {e}"));
    let mut tmp = builder.tempfile_in(parent).map_err(write_err)?;
    tmp.write_all(contents).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    // Make the rename itself durable; failing here loses nothing already promised, so it is
    // not worth an error.
    if let Ok(dir) = fs::File::open(parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}

pub(super) fn edit(
    root: &Path,
    path: &Path,
    rel: &str,
    old: &str,
    new: &str,
) -> Result<(), HomeError> {
    if old.is_empty() {
        return Err(HomeError::Edit(
            "the text to replace is empty; give the exact text to replace, or write the whole file"
                .to_owned(),
        ));
    }
    let text = read_text(path, rel)?;
    match text.matches(old).count() {
        0 => Err(HomeError::Edit(format!(
            "the text to replace was not found in {rel:?}; read the file and copy the text \
             exactly, including spaces and line breaks"
        ))),
        1 => write_atomic(root, path, rel, text.replacen(old, new, 1).as_bytes()),
        n => Err(HomeError::Edit(format!(
            "the text to replace was found {n} times in {rel:?}; give more context around it so \
             it matches exactly once"
        ))),
    }
}

pub(super) fn remember(root: &Path, fact: &str) -> Result<(), HomeError> {
    // One bullet per fact: a fact spanning lines would break the list's shape.
    let fact = fact.split_whitespace().collect::<Vec<_>>().join(" ");
    if fact.is_empty() {
        return Err(HomeError::Other(
            "nothing to remember: the fact is empty".to_owned(),
        ));
    }
    if fact.len() > MAX_FACT_BYTES {
        return Err(HomeError::Other(format!(
            "the fact is {} bytes, over the {MAX_FACT_BYTES}-byte limit; remember one short \
             sentence, or write longer notes to a file under data/",
            fact.len()
        )));
    }
    let path = root.join(USER_FILE);
    let mut text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            HomeError::Other(format!("{USER_FILE} is not UTF-8 text; fix it by hand"))
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => "# About my owner\n\n".to_owned(),
        Err(e) => return Err(io_error("read", USER_FILE, &e)),
    };
    let bullet = format!("- {fact}");
    if text.lines().any(|line| line.trim_end() == bullet) {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&bullet);
    text.push('\n');
    write_atomic(root, &path, USER_FILE, text.as_bytes())
}

pub(super) fn append_transcript(
    root: &Path,
    room_id: &str,
    line: &serde_json::Value,
) -> Result<(), HomeError> {
    let dir = root.join(SESSIONS_DIR);
    let name = transcript_file_name(room_id);
    let rel = format!("{SESSIONS_DIR}/{name}");
    fs::create_dir_all(&dir).map_err(|e| io_error("create", SESSIONS_DIR, &e))?;
    // Compact JSON never contains a raw newline, so one value is exactly one line.
    let json = serde_json::to_string(line)
        .map_err(|e| HomeError::Other(format!("cannot encode transcript line: {e}")))?;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(dir.join(&name))
        .map_err(|e| io_error("open", &rel, &e))?;
    let mut record = String::with_capacity(json.len() + 2);
    // A crash mid-write can leave a partial last line; start on a fresh line so only that one
    // line is damaged, not this one too.
    if !ends_with_newline(&mut file).map_err(|e| io_error("read", &rel, &e))? {
        record.push('\n');
    }
    record.push_str(&json);
    record.push('\n');
    file.write_all(record.as_bytes())
        .map_err(|e| io_error("append to", &rel, &e))?;
    file.sync_data()
        .map_err(|e| io_error("append to", &rel, &e))
}

/// Whether the file is empty or ends with `\n`.
fn ends_with_newline(file: &mut fs::File) -> io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}
