//! Walking folders of the home: listing and searching.

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use super::ops::{io_error, shown, text_from_bytes};
use super::paths::relative;
use super::{Entry, HomeError, MAX_LIST_ENTRIES, SearchHit};

/// Files larger than this are not searched: in a home of notes they are data dumps, and reading
/// them would make one search slow.
const MAX_SEARCH_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest line text returned in a hit, in characters.
const MAX_HIT_CHARS: usize = 200;

pub(in crate::home) fn list(
    root: &Path,
    path: &Path,
    rel: &str,
    recursive: bool,
) -> Result<Vec<Entry>, HomeError> {
    let meta = fs::metadata(path).map_err(|e| io_error("list", rel, &e))?;
    if !meta.is_dir() {
        return Ok(vec![Entry {
            path: relative(root, path),
            is_dir: false,
            size: meta.len(),
        }]);
    }
    let mut entries = Vec::new();
    walk(path, recursive, &mut |p, meta| {
        // Reported as what they point to, but never followed: a link may lead out of the home
        // or into a loop.
        let meta = if meta.is_symlink() {
            fs::metadata(p).unwrap_or_else(|_| meta.clone())
        } else {
            meta.clone()
        };
        let is_dir = meta.is_dir();
        entries.push(Entry {
            path: relative(root, p),
            is_dir,
            size: if is_dir { 0 } else { meta.len() },
        });
        if entries.len() >= MAX_LIST_ENTRIES {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(|e| io_error("list", rel, &e))?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

pub(in crate::home) fn search(
    root: &Path,
    path: &Path,
    rel: &str,
    needle: &str,
    max: usize,
) -> Result<Vec<SearchHit>, HomeError> {
    if needle.trim().is_empty() {
        return Err(HomeError::Other(
            "the text to search for is empty".to_owned(),
        ));
    }
    let needle = needle.to_lowercase();
    let mut hits = Vec::new();
    if max == 0 {
        return Ok(hits);
    }
    let mut search_file = |p: &Path, meta: &fs::Metadata| {
        // Symlinks are skipped, not followed: one pointing out of the home would leak the
        // contents of whatever it points to.
        if !meta.is_file() || meta.len() > MAX_SEARCH_FILE_BYTES {
            return ControlFlow::Continue(());
        }
        let Some(text) = fs::read(p).ok().and_then(text_from_bytes) else {
            return ControlFlow::Continue(());
        };
        for (index, line) in text.lines().enumerate() {
            if line.to_lowercase().contains(&needle) {
                hits.push(SearchHit {
                    path: relative(root, p),
                    line: index + 1,
                    text: clip(line.trim()),
                });
                if hits.len() >= max {
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    };
    // The starting point was vetted by `resolve`, so a symlink there (to inside the home) may be
    // followed; everything below it is walked without following links.
    let meta = fs::metadata(path).map_err(|e| io_error("search", rel, &e))?;
    if meta.is_dir() {
        walk(path, true, &mut search_file).map_err(|e| io_error("search", rel, &e))?;
    } else if meta.is_file() {
        let _ = search_file(path, &meta);
    } else {
        return Err(HomeError::Other(format!(
            "{:?} is not a file or folder that can be searched",
            shown(rel)
        )));
    }
    Ok(hits)
}

fn clip(line: &str) -> String {
    match line.char_indices().nth(MAX_HIT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Visits the entries under `dir` depth-first in name order, never entering `.git` or following
/// symlinks. Only an unreadable `dir` itself is an error; unreadable subfolders are skipped so
/// one bad folder does not hide the rest of the home.
fn walk(
    dir: &Path,
    recursive: bool,
    visit: &mut dyn FnMut(&Path, &fs::Metadata) -> ControlFlow<()>,
) -> std::io::Result<()> {
    let _ = walk_inner(dir, recursive, visit, true)?;
    Ok(())
}

fn walk_inner(
    dir: &Path,
    recursive: bool,
    visit: &mut dyn FnMut(&Path, &fs::Metadata) -> ControlFlow<()>,
    top: bool,
) -> std::io::Result<ControlFlow<()>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if top => return Err(e),
        Err(_) => return Ok(ControlFlow::Continue(())),
    };
    let mut children: Vec<_> = read
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().eq_ignore_ascii_case(".git"))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        let Ok(meta) = fs::symlink_metadata(&child) else {
            continue;
        };
        if visit(&child, &meta).is_break() {
            return Ok(ControlFlow::Break(()));
        }
        if recursive && meta.is_dir() && walk_inner(&child, true, visit, false)?.is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}
