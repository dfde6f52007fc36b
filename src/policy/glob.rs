//! Checking and compiling the globs of policy lists, shared with the config's checks so that a
//! glob the config accepts is also one the policy accepts.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Why a glob was refused; the text names the glob and shows a good one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadGlob(String);

/// Checks an MXID glob, matched against the full user ID: `@bob:example.org`,
/// `@*:friends.org`, `*`. It must compile and start with `@` or `*`.
pub fn check_user_glob(glob: &str) -> Result<(), BadGlob> {
    if glob.is_empty() || glob.chars().any(char::is_whitespace) {
        return Err(BadGlob(format!(
            "{glob:?} is not a user ID glob (it is empty or has spaces); \
             write e.g. \"@bob:example.org\" or \"@*:example.org\""
        )));
    }
    if !glob.starts_with('@') && !glob.starts_with('*') {
        return Err(BadGlob(format!(
            "{glob:?} should look like a user ID, e.g. \"@bob:example.org\" or \"@*:example.org\""
        )));
    }
    compile(glob, false).map(|_| ())
}

/// Checks a server-name glob: `friends.org`, `*.friends.org`, `*`. It must compile and must
/// not be a user ID.
pub fn check_server_glob(glob: &str) -> Result<(), BadGlob> {
    if glob.is_empty()
        || glob
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(BadGlob(format!(
            "{glob:?} is not a server name glob; write e.g. \"friends.org\", \"*.friends.org\" \
             or \"*\" (a server name, not a user ID)"
        )));
    }
    compile(glob, true).map(|_| ())
}

/// Compiles checked user globs into one set (case-sensitive, as user IDs are).
pub(crate) fn user_set<'a>(
    globs: impl IntoIterator<Item = &'a String>,
) -> Result<GlobSet, BadGlob> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        check_user_glob(glob)?;
        builder.add(compile(glob, false)?);
    }
    builder.build().map_err(|e| BadGlob(e.to_string()))
}

/// Compiles checked server globs into one set (case-insensitive, as DNS names are).
pub(super) fn server_set<'a>(
    globs: impl IntoIterator<Item = &'a String>,
) -> Result<GlobSet, BadGlob> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        check_server_glob(glob)?;
        builder.add(compile(glob, true)?);
    }
    builder.build().map_err(|e| BadGlob(e.to_string()))
}

fn compile(glob: &str, case_insensitive: bool) -> Result<globset::Glob, BadGlob> {
    GlobBuilder::new(glob)
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|e| BadGlob(format!("bad glob {glob:?}: {e}")))
}
