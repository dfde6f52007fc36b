//! The system prompt of a public turn: a preamble saying who is speaking, the soul without its
//! private blocks, the identity, and the public files. Nothing else of the home.

use std::sync::Arc;

use super::{PUBLIC_DIR, confine, is_public, read_unlinked, strip_private};
use crate::home::{Home, HomeError};

/// Self files a public prompt holds, in prompt order; `system/user.md` is deliberately absent.
const SELF_FILES: [&str; 2] = ["system/soul.md", "system/identity.md"];

/// Most bytes of public files put in the prompt; the rest stays reachable through `read_file`.
const MAX_PUBLIC_BYTES: usize = 64 * 1024;

/// What a public prompt is made of.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PublicParts {
    /// The owner's MXID.
    pub(crate) owner_id: String,
    /// The owner's name (the MXID's localpart).
    pub(crate) owner_name: String,
    /// `(path, content)` of the soul (private blocks removed), the identity, and every
    /// `*.md` under `system/public/` sorted by path; empty files are left out.
    pub(crate) files: Vec<(String, String)>,
}

/// Reads the public parts of the home. Missing or unreadable files are skipped (a twin with a
/// broken profile should still answer), and so is anything reached through a symlink that
/// leads out of where it claims to be.
pub(crate) async fn read_home(home: Arc<Home>) -> PublicParts {
    let owner_id = home.owner_id().to_owned();
    let owner_name = home.owner_name().to_owned();
    let read = tokio::task::spawn_blocking(move || read_files(&home));
    let files = read.await.unwrap_or_else(|error| {
        tracing::warn!(%error, "reading the public prompt files stopped unexpectedly");
        Vec::new()
    });
    PublicParts {
        owner_id,
        owner_name,
        files,
    }
}

fn read_files(home: &Home) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for path in SELF_FILES {
        push(&mut files, path, read_unlinked(home, path));
    }
    let listed = match home.list(PUBLIC_DIR, true) {
        Ok(entries) => entries,
        Err(HomeError::NotFound(_)) => Vec::new(),
        Err(error) => {
            tracing::warn!(%error, "could not list the public files");
            Vec::new()
        }
    };
    let mut budget = MAX_PUBLIC_BYTES;
    for entry in listed {
        if entry.is_dir || !entry.path.ends_with(".md") || !is_public(home, &entry.path) {
            continue;
        }
        if !usize::try_from(entry.size).is_ok_and(|size| size <= budget) {
            tracing::warn!(path = %entry.path, "public file left out of the prompt: too large");
            continue;
        }
        let text = confine(home, &entry.path).and_then(|path| home.read_to_string(&path));
        if let Ok(text) = &text {
            budget = budget.saturating_sub(text.len());
        }
        push(&mut files, &entry.path, text);
    }
    files
}

fn push(files: &mut Vec<(String, String)>, path: &str, text: Result<String, HomeError>) {
    match text {
        Ok(text) => {
            let text = strip_private(&text);
            if !text.trim().is_empty() {
                files.push((path.to_owned(), text));
            }
        }
        Err(HomeError::NotFound(_)) => {}
        Err(error) => tracing::warn!(path, %error, "skipping a public prompt file"),
    }
}

/// Puts the public prompt together; `person` is who is speaking with the twin.
pub(crate) fn compose(parts: &PublicParts, person: &str, room_id: &str) -> String {
    let owner = if parts.owner_name.is_empty() {
        "your owner"
    } else {
        parts.owner_name.as_str()
    };
    let owner_id = if parts.owner_id.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.owner_id)
    };
    let mut prompt = format!(
        "You are {owner}'s AI twin{owner_id}, an assistant living in a Matrix chat. You are \
         speaking with {person}, who is not your owner. In this conversation you only know your \
         public profile below and this room's conversation; nothing else about {owner} or their \
         notes, plans, contacts or other conversations is available to you. Never claim or \
         reveal anything beyond that; when asked for anything else, say you cannot share it \
         rather than guess. Offer to pass a message on to {owner}. Your tools here only read the public files under {PUBLIC_DIR}/ \
         (paths are relative to your home). Answer in Markdown. {}",
        crate::kernel::quote::RULE
    );
    for (path, text) in &parts.files {
        crate::kernel::prompt::push_file(&mut prompt, path, text);
    }
    prompt.push_str(&format!("\n\nRoom: {room_id}. Speaking with: {person}"));
    prompt
}
