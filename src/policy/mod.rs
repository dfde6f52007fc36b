//! Who may reach a twin, where, and how often: the access policy of issue 4.
//!
//! Pure decisions over plain data, so the room layer can ask them per event:
//!
//! - [`access`]: an owner's `system/access.toml` ([`AccessFile`]) compiled into an
//!   [`AccessPolicy`] (who may DM the twin, invite it, use it in rooms; bots; blocked users;
//!   which servers are trusted; whether strangers may ask to pair).
//! - [`room`]: per-room settings ([`RoomSettings`]): who may address the twin in a group room,
//!   whether it answers unprompted, which tools it may use there.
//! - [`rate`]: sliding-window rate limits per sender and per remote server ([`RateLimiter`]).
//! - [`loops`]: a bound on bot-to-bot turns per room ([`BotTurns`]).
//!
//! Nothing here commits to git or talks to Matrix; loading and saving go through [`Home`]
//! and the caller commits.
//!
//! [`Home`]: crate::home::Home

pub mod access;
mod access_command;
pub(crate) mod glob;
pub mod loops;
pub mod notices;
pub mod proposal;
pub mod rate;
pub mod room;
mod window;

#[cfg(test)]
mod tests;

use crate::home::HomeError;

pub use self::access::{ACCESS_FILE, AccessFile, AccessPolicy};
pub use self::glob::{BadGlob, check_server_glob, check_user_glob};
pub use self::loops::BotTurns;
pub use self::notices::{NoticeVerdict, OwnerNotices};
pub use self::rate::{LimitScope, RateLimiter, RateLimits, Verdict};
pub use self::room::RoomSettings;

/// A policy problem, phrased for the owner who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file (or a default from the config) holds something that cannot work.
    #[error("{path}: {message}")]
    Invalid {
        /// The file at fault, relative to the home (e.g. `system/access.toml`).
        path: String,
        /// What is wrong, e.g. the TOML parser's message or the bad glob.
        message: String,
    },
    /// A `!ai policy ...` command was not understood; the text says what was wrong and how
    /// the command is used.
    #[error("{0}")]
    Command(String),
    /// Reading or writing the home failed.
    #[error(transparent)]
    Home(#[from] HomeError),
}

/// A [`PolicyError::Invalid`] for the file at `path`.
fn invalid(path: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// `a`, `b` as Markdown code spans, comma-separated.
fn code_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|item| format!("`{}`", item.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `value` as pretty TOML below a comment `header`.
fn with_header(header: &str, value: &impl serde::Serialize) -> Result<String, toml::ser::Error> {
    Ok(format!("{header}\n{}", toml::to_string_pretty(value)?))
}
