//! Tests of the file home, on real folders and repositories in temp dirs.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod files;
mod history;
mod paths;
mod skills;

use std::path::Path;

use super::Home;

const OWNER: &str = "@alice:example.org";

/// A fresh home from the built-in template, inside a temp dir kept alive by the caller.
fn new_home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = Home::open_or_create(&dir.path().join("alice"), None, OWNER).expect("home");
    (dir, home)
}

/// Commit messages from HEAD back to the first commit.
fn log(root: &Path) -> Vec<String> {
    let repo = git2::Repository::open(root).expect("repo");
    let mut walk = repo.revwalk().expect("revwalk");
    walk.push_head().expect("head");
    walk.map(|id| {
        let commit = repo.find_commit(id.expect("id")).expect("commit");
        commit.message().unwrap_or_default().to_owned()
    })
    .collect()
}

/// Paths in HEAD's tree.
fn tracked(root: &Path) -> Vec<String> {
    let repo = git2::Repository::open(root).expect("repo");
    let tree = repo.head().expect("head").peel_to_tree().expect("tree");
    let mut paths = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            paths.push(format!("{dir}{}", entry.name().unwrap_or_default()));
        }
        git2::TreeWalkResult::Ok
    })
    .expect("walk");
    paths
}
