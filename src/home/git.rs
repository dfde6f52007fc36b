//! The home's git repository.

use std::path::Path;

use git2::{ErrorCode, IndexAddOption, Repository, RepositoryInitOptions, Signature};

use super::HomeError;

/// Author and committer of every commit: fixed, so no git configuration is needed on the host.
const AUTHOR_NAME: &str = "matrix-os";
const AUTHOR_EMAIL: &str = "matrix-os@localhost";
/// Used when the caller gives an empty message, since git history should say something.
const DEFAULT_MESSAGE: &str = "Update home";

fn git_error(action: &str, e: &git2::Error) -> HomeError {
    HomeError::Other(format!("git could not {action}: {}", e.message()))
}

/// Creates an empty repository in `dir` (which must exist) whose first branch is `main`.
pub(super) fn init(dir: &Path) -> Result<(), HomeError> {
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head("main").mkdir(false);
    Repository::init_opts(dir, &opts).map_err(|e| git_error("create the home's repository", &e))?;
    Ok(())
}

pub(super) fn commit_all(root: &Path, message: &str) -> Result<Option<String>, HomeError> {
    // `open`, not `discover`: a home without its own repository must not commit into some
    // repository further up the tree.
    let repo = Repository::open(root).map_err(|e| git_error("open the home's repository", &e))?;
    let mut index = repo.index().map_err(|e| git_error("read the index", &e))?;
    let all = ["*"];
    // `add_all` adds new and changed files (honoring .gitignore); `update_all` drops the
    // deleted ones. Together they are `git add -A`.
    index
        .add_all(all.iter(), IndexAddOption::DEFAULT, None)
        .map_err(|e| git_error("stage changes", &e))?;
    index
        .update_all(all.iter(), None)
        .map_err(|e| git_error("stage deletions", &e))?;
    index
        .write()
        .map_err(|e| git_error("write the index", &e))?;
    let tree_id = index
        .write_tree()
        .map_err(|e| git_error("write the tree", &e))?;

    let parent = match repo.head() {
        Ok(head) => Some(
            head.peel_to_commit()
                .map_err(|e| git_error("read HEAD", &e))?,
        ),
        Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => None,
        Err(e) => return Err(git_error("read HEAD", &e)),
    };
    let unchanged = match &parent {
        Some(parent) => parent.tree_id() == tree_id,
        None => index.is_empty(),
    };
    if unchanged {
        return Ok(None);
    }

    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| git_error("read the tree", &e))?;
    let signature =
        Signature::now(AUTHOR_NAME, AUTHOR_EMAIL).map_err(|e| git_error("make a signature", &e))?;
    let message = match message.trim() {
        "" => DEFAULT_MESSAGE,
        trimmed => trimmed,
    };
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .map_err(|e| git_error("commit", &e))?;
    Ok(Some(id.to_string()))
}
