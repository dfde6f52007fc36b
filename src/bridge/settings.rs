//! What the owner decided about bridged chats: `system/bridges.toml` in the home (a policy
//! file: only the owner's `!ai bridge ...` commands and their own edits change it).

use std::collections::BTreeMap;

use ruma::{OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use crate::{
    home::{Home, HomeError},
    policy::PolicyError,
};

/// The file, relative to the home.
pub const BRIDGES_FILE: &str = "system/bridges.toml";

/// Minutes the twin stays quiet in a portal after the owner answered there, unless the file
/// says otherwise.
pub const DEFAULT_QUIET_MINUTES: u64 = 30;

const HEADER: &str = "\
# The twin in bridged chats (Telegram, WhatsApp... through the mautrix bridges).
# `!ai bridge answer|read|off` in a portal changes its entry.
#
# quiet_minutes  how long the twin stays quiet in a chat after you answered there yourself
# <network>      your own accounts on a network, as their Matrix ghosts; they count as you
#                (portals name them, so this is rarely needed), e.g. telegram = [\"@telegram_1001:example.org\"]
# [portals]      what the twin does in each portal it is in, by room ID (or lists:
#                answer = [\"!room:example.org\"], read = [...], off = [...]):
#                \"answer\": answers your contacts there (public context only, group-room rules)
#                \"read\" (the default): answers nothing there, reads it for you (ask in your DM)
#                \"off\": neither answers nor reads
";

/// What the twin does in one portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PortalMode {
    /// Answers the owner's contacts (call-center mode).
    Answer,
    /// Answers nothing; keeps the chat's recent messages for the owner.
    #[default]
    Read,
    /// Neither.
    Off,
}

impl PortalMode {
    /// The word in the file and in commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Read => "read",
            Self::Off => "off",
        }
    }
}

/// `system/bridges.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSettings")]
pub struct BridgeSettings {
    /// Minutes of quiet after the owner answered in a portal.
    pub quiet_minutes: u64,
    /// The owner's own ghosts, per network (`telegram = ["@telegram_1001:example.org"]`).
    #[serde(flatten)]
    pub me: BTreeMap<String, Vec<OwnedUserId>>,
    /// Each portal's mode, by room ID.
    pub portals: BTreeMap<String, PortalMode>,
}

/// The file as written: `quiet_minutes`, `[portals]` (room ID = mode), lists of rooms per mode
/// (`answer = ["!room:example.org"]`), and any other key a network with the owner's ghosts.
#[derive(Deserialize)]
struct RawSettings {
    #[serde(default = "default_quiet_minutes")]
    quiet_minutes: u64,
    #[serde(default)]
    portals: BTreeMap<String, PortalEntry>,
    #[serde(flatten)]
    lists: BTreeMap<String, Vec<String>>,
}

/// A portal's entry: `"!room" = "answer"` or `["!room"] mode = "answer"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum PortalEntry {
    Mode(PortalMode),
    Table { mode: PortalMode },
}

fn default_quiet_minutes() -> u64 {
    DEFAULT_QUIET_MINUTES
}

impl TryFrom<RawSettings> for BridgeSettings {
    type Error = String;

    fn try_from(raw: RawSettings) -> Result<Self, String> {
        let mut settings = Self {
            quiet_minutes: raw.quiet_minutes,
            me: BTreeMap::new(),
            portals: raw
                .portals
                .into_iter()
                .map(|(room, entry)| match entry {
                    PortalEntry::Mode(mode) | PortalEntry::Table { mode } => (room, mode),
                })
                .collect(),
        };
        for (key, values) in raw.lists {
            let mode = match key.as_str() {
                "answer" => Some(PortalMode::Answer),
                "read" => Some(PortalMode::Read),
                "off" => Some(PortalMode::Off),
                _ => None,
            };
            match mode {
                Some(mode) => {
                    for room in values {
                        ruma::RoomId::parse(&room)
                            .map_err(|e| format!("{key}: {room:?} is no room ID ({e})"))?;
                        settings.portals.insert(room, mode);
                    }
                }
                None => {
                    let ghosts = values
                        .iter()
                        .map(|v| {
                            OwnedUserId::try_from(v.as_str())
                                .map_err(|e| format!("{key}: {v:?} is no user ID ({e})"))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    settings.me.insert(key, ghosts);
                }
            }
        }
        for room in settings.portals.keys() {
            ruma::RoomId::parse(room)
                .map_err(|e| format!("portals: {room:?} is no room ID ({e})"))?;
        }
        Ok(settings)
    }
}

impl Default for BridgeSettings {
    fn default() -> Self {
        Self {
            quiet_minutes: DEFAULT_QUIET_MINUTES,
            me: BTreeMap::new(),
            portals: BTreeMap::new(),
        }
    }
}

impl BridgeSettings {
    /// Reads the file; missing means the defaults, malformed is [`PolicyError::Invalid`].
    pub fn load(home: &Home) -> Result<Self, PolicyError> {
        match home.read_to_string(BRIDGES_FILE) {
            Ok(text) => Self::parse(&text),
            Err(HomeError::NotFound(_)) => Ok(Self::default()),
            Err(HomeError::Other(message)) => Err(PolicyError::Invalid {
                path: BRIDGES_FILE.to_owned(),
                message,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError::Invalid {
            path: BRIDGES_FILE.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })
    }

    /// The mode of `room`.
    pub fn mode(&self, room: &RoomId) -> PortalMode {
        self.portals.get(room.as_str()).copied().unwrap_or_default()
    }

    /// Whether `user` is one of the owner's ghosts listed under `[me]`.
    pub fn is_me(&self, user: &UserId) -> bool {
        self.me.values().flatten().any(|ghost| ghost == user)
    }

    /// Writes the file with its comment header (atomically; does not commit).
    pub fn save(&self, home: &Home) -> Result<(), PolicyError> {
        let body = toml::to_string_pretty(self).map_err(|e| PolicyError::Invalid {
            path: BRIDGES_FILE.to_owned(),
            message: e.to_string(),
        })?;
        home.write_atomic(BRIDGES_FILE, format!("{HEADER}\n{body}").as_bytes())?;
        Ok(())
    }

    /// Applies `!ai bridge <words>` for `room`: `answer`, `read` or `off`. Returns what
    /// changed, or [`PolicyError::Command`] with usage help.
    pub fn apply_command(&mut self, room: &RoomId, words: &[&str]) -> Result<String, PolicyError> {
        let mode = match words {
            ["answer"] => PortalMode::Answer,
            ["read"] => PortalMode::Read,
            ["off"] => PortalMode::Off,
            _ => {
                return Err(PolicyError::Command(
                    "Usage, in a bridged chat: `!ai bridge answer` (the twin answers your \
                     contacts here), `!ai bridge read` (it answers nothing and reads the chat \
                     for you) or `!ai bridge off`."
                        .to_owned(),
                ));
            }
        };
        self.portals.insert(room.as_str().to_owned(), mode);
        Ok(match mode {
            PortalMode::Answer => format!(
                "The twin answers your contacts in this chat (public context only), and stays \
                 quiet for {} minutes after you answer here yourself.",
                self.quiet_minutes
            ),
            PortalMode::Read => {
                "The twin answers nothing in this chat and reads it for you.".to_owned()
            }
            PortalMode::Off => "The twin neither answers nor reads this chat.".to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::room_id;

    use super::*;

    #[test]
    fn the_file_round_trips_and_defaults_to_read() {
        let mut settings = BridgeSettings::default();
        let room = room_id!("!p:hs");
        assert_eq!(settings.mode(room), PortalMode::Read);
        settings.apply_command(room, &["answer"]).unwrap();
        settings.me.insert(
            "telegram".into(),
            vec![ruma::owned_user_id!("@telegram_1:hs")],
        );
        let text = format!("{HEADER}\n{}", toml::to_string_pretty(&settings).unwrap());
        assert!(text.contains("telegram = [\"@telegram_1:hs\"]"), "{text}");
        let back = BridgeSettings::parse(&text).unwrap();
        assert_eq!(back, settings);
        assert_eq!(back.mode(room), PortalMode::Answer);
        assert!(back.is_me(ruma::user_id!("@telegram_1:hs")));
        assert!(settings.apply_command(room, &["maybe"]).is_err());
    }

    #[test]
    fn modes_may_be_lists_and_networks_list_the_owners_ghosts() {
        let settings = BridgeSettings::parse(
            "quiet_minutes = 5\nanswer = [\"!a:hs\"]\noff = [\"!c:hs\"]\n\
             whatsapp = [\"@whatsapp_49:hs\"]\n[portals]\n\"!b:hs\" = \"answer\"\n\
             [portals.\"!d:hs\"]\nmode = \"answer\"\n",
        )
        .unwrap();
        assert_eq!(settings.quiet_minutes, 5);
        assert_eq!(settings.mode(room_id!("!a:hs")), PortalMode::Answer);
        assert_eq!(settings.mode(room_id!("!b:hs")), PortalMode::Answer);
        assert_eq!(settings.mode(room_id!("!c:hs")), PortalMode::Off);
        assert_eq!(settings.mode(room_id!("!d:hs")), PortalMode::Answer);
        assert!(settings.is_me(ruma::user_id!("@whatsapp_49:hs")));
        assert!(BridgeSettings::parse("telegram = [\"not a user\"]\n").is_err());
        assert!(BridgeSettings::parse("answer = [\"@alice:hs\"]\n").is_err());
    }

    #[test]
    fn a_bad_mode_names_the_file() {
        let err = BridgeSettings::parse("[portals]\n\"!p:hs\" = \"shout\"\n").unwrap_err();
        assert!(err.to_string().contains(BRIDGES_FILE), "{err}");
    }
}
