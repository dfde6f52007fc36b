//! The mautrix bridges (Telegram, WhatsApp, any bridgev2 bridge) as matrix-os sees them.
//!
//! No network code of ours: the bridges put remote chats into Matrix rooms ("portals") and
//! remote people into Matrix users ("ghosts"). This module knows which bridge bots the
//! administrator trusts ([`Bridges`], from `[bridges]` in the config), recognises a portal from
//! its `m.bridge` state when that bot sent it ([`portal`]), and reads what the owner decided for
//! each portal (`system/bridges.toml` in the home, [`settings`]).

pub mod portal;
pub mod quiet;
pub mod settings;

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use ruma::{OwnedUserId, UserId};
use serde::Deserialize;

pub use self::{
    portal::{Portal, PortalKind},
    quiet::QuietPortals,
    settings::{BridgeSettings, PortalMode},
};

/// One bridge of `[bridges]` in the config: `[bridges.telegram]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The bridge's bot (`@telegrambot:example.org`): only `m.bridge` state it sent makes a
    /// room a portal.
    pub bot: OwnedUserId,
    /// The bridge's ghosts, as MXID globs (`@telegram_*:example.org`), the same namespace as
    /// in the bridge's registration: they never are twins and never get twins.
    #[serde(default)]
    pub ghosts: Vec<String>,
}

/// A bridge error in the config.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// A ghost glob does not parse.
    #[error("bridges.{bridge}.ghosts: {reason}")]
    BadGlob {
        /// The bridge (`telegram`).
        bridge: String,
        /// Why.
        reason: String,
    },
}

/// The trusted bridges.
#[derive(Debug, Clone, Default)]
pub struct Bridges {
    bridges: Vec<Known>,
}

#[derive(Debug, Clone)]
struct Known {
    name: String,
    bot: OwnedUserId,
    ghost_globs: Vec<String>,
    ghosts: GlobSet,
}

impl Bridges {
    /// The bridges of `[bridges]`.
    pub fn new(config: &BTreeMap<String, BridgeConfig>) -> Result<Self, BridgeError> {
        let mut bridges = Vec::with_capacity(config.len());
        for (name, bridge) in config {
            let mut builder = GlobSetBuilder::new();
            for glob in &bridge.ghosts {
                let glob = Glob::new(glob).map_err(|e| BridgeError::BadGlob {
                    bridge: name.clone(),
                    reason: e.to_string(),
                })?;
                builder.add(glob);
            }
            let ghosts = builder.build().map_err(|e| BridgeError::BadGlob {
                bridge: name.clone(),
                reason: e.to_string(),
            })?;
            bridges.push(Known {
                name: name.clone(),
                bot: bridge.bot.clone(),
                ghost_globs: bridge.ghosts.clone(),
                ghosts,
            });
        }
        Ok(Self { bridges })
    }

    /// Whether `user` is a trusted bridge bot.
    pub fn is_bot(&self, user: &UserId) -> bool {
        self.bridges.iter().any(|b| b.bot == user)
    }

    /// Whether `user` belongs to a bridge: its bot or one of its ghosts.
    pub fn is_bridged_user(&self, user: &UserId) -> bool {
        self.bridges
            .iter()
            .any(|b| b.bot == user || b.ghosts.is_match(user.as_str()))
    }

    /// The name of the bridge (`[bridges.<name>]`) whose bot is `bot`.
    pub fn name_of_bot(&self, bot: &UserId) -> Option<&str> {
        self.bridges
            .iter()
            .find(|b| b.bot == bot)
            .map(|b| b.name.as_str())
    }

    /// Whether `user` is a ghost of the bridge whose bot is `bot`.
    pub fn is_ghost_of(&self, bot: &UserId, user: &UserId) -> bool {
        self.bridges
            .iter()
            .any(|b| b.bot == bot && b.ghosts.is_match(user.as_str()))
    }

    /// The ghost the bridge of `bot` gives the remote account `remote_id` (the login a portal
    /// names as its receiver): each ghost glob with its `*` replaced by the id, when that is a
    /// valid MXID matching the glob.
    pub fn ghost_for(&self, bot: &UserId, remote_id: &str) -> Vec<OwnedUserId> {
        let localpart_char =
            |c: char| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/' | '+');
        if remote_id.is_empty() || !remote_id.chars().all(localpart_char) {
            return Vec::new();
        }
        self.bridges
            .iter()
            .filter(|b| b.bot == bot)
            .flat_map(|b| b.ghost_globs.iter().map(move |g| (b, g)))
            .filter(|(_, glob)| glob.matches('*').count() == 1)
            .filter_map(|(b, glob)| {
                let candidate = OwnedUserId::try_from(glob.replacen('*', remote_id, 1)).ok()?;
                b.ghosts.is_match(candidate.as_str()).then_some(candidate)
            })
            .collect()
    }

    /// Whether no bridge is configured.
    pub fn is_empty(&self) -> bool {
        self.bridges.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::user_id;

    use super::*;

    fn telegram() -> Bridges {
        let mut config = BTreeMap::new();
        config.insert(
            "telegram".to_owned(),
            BridgeConfig {
                bot: ruma::owned_user_id!("@telegrambot:hs"),
                ghosts: vec!["@telegram_*:hs".to_owned()],
            },
        );
        Bridges::new(&config).unwrap()
    }

    #[test]
    fn ghosts_and_bots_are_bridged_users() {
        let bridges = telegram();
        assert!(bridges.is_bot(user_id!("@telegrambot:hs")));
        assert!(bridges.is_bridged_user(user_id!("@telegram_123:hs")));
        assert!(bridges.is_bridged_user(user_id!("@telegram_5_ai:hs")));
        assert!(!bridges.is_bridged_user(user_id!("@telegram_1:other")));
        assert!(!bridges.is_bridged_user(user_id!("@alice:hs")));
    }

    #[test]
    fn the_receivers_ghost_comes_from_the_glob() {
        let bridges = telegram();
        assert_eq!(
            bridges.ghost_for(user_id!("@telegrambot:hs"), "1001"),
            vec![ruma::owned_user_id!("@telegram_1001:hs")]
        );
        assert!(
            bridges
                .ghost_for(user_id!("@telegrambot:hs"), "")
                .is_empty()
        );
        assert!(bridges.ghost_for(user_id!("@other:hs"), "1001").is_empty());
        // Not a valid localpart: no ghost.
        assert!(
            bridges
                .ghost_for(user_id!("@telegrambot:hs"), "a b")
                .is_empty()
        );
    }

    #[test]
    fn a_bad_glob_names_the_bridge() {
        let mut config = BTreeMap::new();
        config.insert(
            "whatsapp".to_owned(),
            BridgeConfig {
                bot: ruma::owned_user_id!("@whatsappbot:hs"),
                ghosts: vec!["@whatsapp_[:hs".to_owned()],
            },
        );
        let err = Bridges::new(&config).unwrap_err().to_string();
        assert!(err.contains("bridges.whatsapp.ghosts"), "{err}");
    }
}
