//! What a public turn (someone other than the owner addressing the twin) may see.
//!
//! Enforced here in code rather than asked of the model: the public prompt is built from the
//! public files only ([`prompt`]), private blocks are cut out of the soul ([`strip_private`]),
//! and file tools of a public turn go through [`confine`].

mod confine;
mod private;
pub(crate) mod prompt;

pub(crate) use self::{
    confine::{confine, is_public, read_unlinked},
    private::strip_private,
};

/// The folder whose files anyone talking to the twin may see, relative to the home.
pub(crate) const PUBLIC_DIR: &str = "system/public";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
