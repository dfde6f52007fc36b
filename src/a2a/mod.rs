//! The AI-to-AI side of a twin that is not the protocol itself (`crate::protocol`): the
//! owner's meeting policy, how another person's twin is found, the words owners are told, and
//! the brief of meetings in progress the model gets in owner turns.
//! The room session (`room::negotiate`) drives negotiations with these.

pub mod brief;
pub mod policy;
pub mod wording;

use ruma::{OwnedUserId, UserId};

pub use self::policy::{MEETINGS_FILE, MeetingPolicy, MeetingsFile};

/// The twin of `person` by matrix-os' convention: `@<localpart><suffix>:<server>`. The peer's
/// hello confirms it (its `owner` must be `person`).
pub fn twin_of(person: &UserId, suffix: &str) -> Option<OwnedUserId> {
    UserId::parse(format!(
        "@{}{suffix}:{}",
        person.localpart(),
        person.server_name()
    ))
    .ok()
}
