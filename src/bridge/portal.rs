//! Portal rooms: what a bridge's `m.bridge` state (MSC2346, and the older
//! `uk.half-shot.bridge`) and `io.element.functional_members` say, believed only from the bot.
//!
//! Anyone allowed to send state in a room can send an `m.bridge` event naming any bot, so the
//! content alone proves nothing: a portal is a room where a trusted bot itself sent it
//! ([`Portal::from_bridge_state`] checks the sender against [`super::Bridges`]).

use ruma::{OwnedUserId, UserId};
use serde::Deserialize;

use super::Bridges;

/// `m.bridge`, the state bridges put into their portals.
pub const BRIDGE_STATE: &str = "m.bridge";
/// The older name of `m.bridge`, still sent beside it.
pub const HALF_SHOT_BRIDGE_STATE: &str = "uk.half-shot.bridge";
/// Which members of a room are services (the bot, the logged-in user's own ghost).
pub const FUNCTIONAL_MEMBERS_STATE: &str = "io.element.functional_members";

/// What kind of chat a portal is (`com.beeper.room_type.v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalKind {
    /// A one-to-one chat.
    Dm,
    /// A small group without a name of its own.
    GroupDm,
    /// A group, supergroup or channel.
    Group,
    /// The bridge's space of a login, never a chat.
    Space,
}

impl PortalKind {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dm => "dm",
            Self::GroupDm => "group_dm",
            Self::Group => "group",
            Self::Space => "space",
        }
    }

    /// Reads the stored (or sent) word; unknown words and `""` are groups.
    pub fn parse(word: &str) -> Self {
        match word {
            "dm" => Self::Dm,
            "group_dm" => Self::GroupDm,
            "space" => Self::Space,
            _ => Self::Group,
        }
    }
}

/// A recognised portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// The bridge bot that sent its state.
    pub bot: OwnedUserId,
    /// The network (`protocol.id`: `telegram`, `whatsapp`).
    pub network: String,
    /// The network's name for people (`protocol.displayname`), else its id.
    pub network_name: String,
    /// DM, group DM, group.
    pub kind: PortalKind,
    /// The remote chat's name (`channel.displayname`), when the bridge gave one.
    pub chat_name: Option<String>,
    /// The login the portal belongs to (`channel."fi.mau.receiver"`): the owner's remote id.
    pub receiver: Option<String>,
    /// `io.element.functional_members.service_members`, when the bot sent it.
    pub service_members: Vec<OwnedUserId>,
}

#[derive(Deserialize)]
struct BridgeContent {
    bridgebot: OwnedUserId,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    channel: Channel,
    #[serde(rename = "com.beeper.room_type.v2", default)]
    room_type_v2: Option<String>,
    #[serde(rename = "com.beeper.room_type", default)]
    room_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct Protocol {
    #[serde(default)]
    id: String,
    #[serde(default)]
    displayname: Option<String>,
}

#[derive(Deserialize, Default)]
struct Channel {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    displayname: Option<String>,
    #[serde(rename = "fi.mau.receiver", default)]
    receiver: Option<String>,
}

#[derive(Deserialize)]
struct FunctionalMembers {
    #[serde(default)]
    service_members: Vec<String>,
}

/// Longest chat or network name kept (it is remote people's text).
const MAX_NAME_CHARS: usize = 100;

fn bounded(name: Option<String>) -> Option<String> {
    name.map(|n| {
        n.chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect::<String>()
    })
    .filter(|n| !n.trim().is_empty())
}

impl Portal {
    /// The portal an `m.bridge` (or `uk.half-shot.bridge`) event describes, when `sender` is a
    /// trusted bridge bot and the content names that same bot; `None` for anything else (a
    /// forgery, a malformed content, the bridge's personal space).
    pub fn from_bridge_state(
        bridges: &Bridges,
        sender: &UserId,
        content: &serde_json::Value,
    ) -> Option<Self> {
        if !bridges.is_bot(sender) {
            return None;
        }
        let content: BridgeContent = serde_json::from_value(content.clone()).ok()?;
        if content.bridgebot != sender {
            return None;
        }
        let kind_word = content
            .room_type_v2
            .or(content.room_type)
            .unwrap_or_default();
        let kind = PortalKind::parse(&kind_word);
        if kind == PortalKind::Space
            || content.channel.id.as_deref() == Some("__personal_filtering_space__")
        {
            return None;
        }
        let network = if content.protocol.id.is_empty() {
            bridges.name_of_bot(sender).unwrap_or("bridge").to_owned()
        } else {
            content.protocol.id.chars().take(MAX_NAME_CHARS).collect()
        };
        Some(Self {
            bot: sender.to_owned(),
            network_name: bounded(content.protocol.displayname).unwrap_or_else(|| network.clone()),
            network,
            kind,
            chat_name: bounded(content.channel.displayname),
            receiver: content
                .channel
                .receiver
                .filter(|r| !r.is_empty() && r.len() <= 255),
            service_members: Vec::new(),
        })
    }

    /// The service members an `io.element.functional_members` event lists, when the portal's
    /// own bot sent it; `None` otherwise (it is then ignored).
    pub fn service_members_from(
        &self,
        sender: &UserId,
        content: &serde_json::Value,
    ) -> Option<Vec<OwnedUserId>> {
        if sender != self.bot {
            return None;
        }
        let members: FunctionalMembers = serde_json::from_value(content.clone()).ok()?;
        Some(
            members
                .service_members
                .into_iter()
                .filter_map(|m| OwnedUserId::try_from(m).ok())
                .take(50)
                .collect(),
        )
    }

    /// The owner's own ghosts in this portal: the ghost of the portal's receiver, and the
    /// bridge's ghosts among the service members (a login's own ghost is listed there).
    pub fn owner_ghosts(&self, bridges: &Bridges) -> Vec<OwnedUserId> {
        let mut ghosts = self
            .receiver
            .as_deref()
            .map(|r| bridges.ghost_for(&self.bot, r))
            .unwrap_or_default();
        for member in &self.service_members {
            if *member != self.bot
                && bridges.is_ghost_of(&self.bot, member)
                && !ghosts.contains(member)
            {
                ghosts.push(member.clone());
            }
        }
        ghosts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use ruma::user_id;
    use serde_json::json;

    use super::*;
    use crate::bridge::BridgeConfig;

    fn bridges() -> Bridges {
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

    fn dm_state() -> serde_json::Value {
        json!({
            "bridgebot": "@telegrambot:hs",
            "creator": "@telegrambot:hs",
            "protocol": {"id": "telegram", "displayname": "Telegram"},
            "channel": {"id": "user:2002", "displayname": "Bob", "fi.mau.receiver": "1001"},
            "com.beeper.room_type": "dm",
            "com.beeper.room_type.v2": "dm"
        })
    }

    #[test]
    fn the_bots_own_state_makes_a_portal() {
        let portal =
            Portal::from_bridge_state(&bridges(), user_id!("@telegrambot:hs"), &dm_state())
                .unwrap();
        assert_eq!(portal.network, "telegram");
        assert_eq!(portal.network_name, "Telegram");
        assert_eq!(portal.kind, PortalKind::Dm);
        assert_eq!(portal.chat_name.as_deref(), Some("Bob"));
        assert_eq!(portal.receiver.as_deref(), Some("1001"));
        assert_eq!(
            portal.owner_ghosts(&bridges()),
            vec![ruma::owned_user_id!("@telegram_1001:hs")]
        );
    }

    #[test]
    fn forged_state_is_no_portal() {
        // Sent by someone else, naming the real bot.
        assert!(
            Portal::from_bridge_state(&bridges(), user_id!("@mallory:hs"), &dm_state()).is_none()
        );
        // Sent by an unknown bot naming itself.
        let mut other = dm_state();
        other["bridgebot"] = json!("@fakebot:hs");
        assert!(Portal::from_bridge_state(&bridges(), user_id!("@fakebot:hs"), &other).is_none());
        // Sent by the real bot, naming another (a copy of someone else's content).
        assert!(
            Portal::from_bridge_state(&bridges(), user_id!("@telegrambot:hs"), &other).is_none()
        );
        // Malformed.
        assert!(
            Portal::from_bridge_state(&bridges(), user_id!("@telegrambot:hs"), &json!({"x": 1}))
                .is_none()
        );
    }

    #[test]
    fn the_personal_space_is_no_portal() {
        let mut space = dm_state();
        space["channel"]["id"] = json!("__personal_filtering_space__");
        space["com.beeper.room_type.v2"] = json!("space");
        assert!(
            Portal::from_bridge_state(&bridges(), user_id!("@telegrambot:hs"), &space).is_none()
        );
    }

    #[test]
    fn service_members_only_from_the_bot() {
        let mut portal =
            Portal::from_bridge_state(&bridges(), user_id!("@telegrambot:hs"), &dm_state())
                .unwrap();
        portal.receiver = None;
        let content = json!({"service_members": ["@telegrambot:hs", "@telegram_7:hs", "bad"]});
        assert!(
            portal
                .service_members_from(user_id!("@mallory:hs"), &content)
                .is_none()
        );
        portal.service_members = portal
            .service_members_from(user_id!("@telegrambot:hs"), &content)
            .unwrap();
        assert_eq!(
            portal.owner_ghosts(&bridges()),
            vec![ruma::owned_user_id!("@telegram_7:hs")]
        );
    }
}
