//! Who the twin is speaking with in a turn.

/// Who addresses the twin in a turn; decides what the kernel shows the model and which tools
/// run.
///
/// With [`Audience::Public`] the kernel itself keeps the owner's private context away: the
/// system prompt holds only the public profile, earlier history is reduced to plain text, and
/// the only tools read files under `system/public/` (see [`crate::kernel::tools::specs_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The twin's owner: the whole home and every tool.
    Owner,
    /// Someone other than the owner: public context only.
    Public {
        /// The MXID addressing the twin.
        person: String,
    },
}

impl Audience {
    /// Whether this is the owner.
    pub fn is_owner(&self) -> bool {
        matches!(self, Self::Owner)
    }
}
