//! Per-room settings, one file per room under `system/rooms/`.

use ruma::{RoomId, UserId};
use serde::{Deserialize, Serialize};

use super::access::AccessPolicy;
use super::glob::check_user_glob;
use super::{PolicyError, code_list, invalid, with_header};
use crate::home::{Home, HomeError, transcript_file_name};

/// Folder of the per-room settings files, relative to the home.
pub const ROOMS_DIR: &str = "system/rooms";
/// The `address` word for the owner.
pub const OWNER: &str = "owner";
/// The `address` word for everyone in the room who is not blocked.
pub const MEMBERS: &str = "members";

const HEADER: &str = "\
# Settings of the twin in one room. `!ai policy room ...` in that room changes them.
#
# address     who may address the twin here: \"owner\" (the owner only), \"members\" (anyone
#             in the room who is not blocked) or user ID globs (\"@bob:example.org\",
#             \"@*:friends.org\"). The owner always may; blocked users never may. People that
#             system/access.toml's `rooms` list allows may too.
# unprompted  whether the twin answers every message of those people, not only when addressed
# tools       tools the twin may use here; leave it out for all the conversation allows
# stream      false: answers come in one message at the end instead of being written into
#             the room by edits; leave it out for the twin's `stream` (system/settings.toml)
";

const USAGE: &str = "\
Usage:
- `!ai policy room address owner|members|<glob>...`: who may address the twin here \
(`owner` may be mixed with globs such as `@bob:example.org`)
- `!ai policy room unprompted on|off`: answer every message of those people, not only when \
addressed
- `!ai policy room tools <tool>...|all|none`: which tools the twin may use here
- `!ai policy room stream on|off|default`: write answers into the room as they come (edits), \
or send each in one message at the end";

fn usage(problem: &str) -> PolicyError {
    PolicyError::Command(format!("{problem}\n\n{USAGE}"))
}

/// How the twin behaves in one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomSettings {
    /// Who may address the twin in this room: "owner" (the default, `vec!["owner".into()]`),
    /// "members" (anyone in the room who is not blocked), or MXID globs (may be mixed with
    /// "owner").
    pub address: Vec<String>,
    /// Whether the twin answers every message of those allowed to address it, not only when
    /// addressed (default false).
    pub unprompted: bool,
    /// Tools allowed in this room; None = whatever the conversation allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Whether answers here are streamed by edits; None = the twin's setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            address: vec![OWNER.into()],
            unprompted: false,
            tools: None,
            stream: None,
        }
    }
}

impl RoomSettings {
    /// `system/rooms/<file-safe room id>.toml`. The room id is made file-safe the way
    /// transcripts are ([`transcript_file_name`]): bytes outside `[A-Za-z0-9._-]` are
    /// percent-escaped with upper-case hex (`!abc:x.org` -> `%21abc%3Ax.org.toml`), and very
    /// long ids are shortened with a hash, so distinct rooms never share a file.
    pub fn path_for(room_id: &RoomId) -> String {
        let name = transcript_file_name(room_id.as_str());
        let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
        format!("{ROOMS_DIR}/{stem}.toml")
    }

    /// Reads the room's settings; a missing file means the defaults. Malformed TOML or a bad
    /// `address` entry is a [`PolicyError::Invalid`] naming the file.
    pub fn load(home: &Home, room_id: &RoomId) -> Result<Self, PolicyError> {
        let path = Self::path_for(room_id);
        let text = match home.read_to_string(&path) {
            Ok(text) => text,
            Err(HomeError::NotFound(_)) => return Ok(Self::default()),
            Err(HomeError::Other(message)) => return Err(invalid(&path, message)),
            Err(e) => return Err(e.into()),
        };
        Self::parse(&text, &path)
    }

    /// Parses the text of a room's settings file; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, PolicyError> {
        let settings: Self =
            toml::from_str(text).map_err(|e| invalid(path, e.to_string().trim_end()))?;
        for entry in &settings.address {
            check_address(entry).map_err(|message| invalid(path, format!("address: {message}")))?;
        }
        if let Some(tools) = &settings.tools {
            for tool in tools {
                check_tool(tool).map_err(|message| invalid(path, format!("tools: {message}")))?;
            }
        }
        Ok(settings)
    }

    /// Writes the room's settings with a comment header (atomically; does not commit).
    pub fn save(&self, home: &Home, room_id: &RoomId) -> Result<(), PolicyError> {
        let path = Self::path_for(room_id);
        let text = with_header(HEADER, self).map_err(|e| invalid(&path, e.to_string()))?;
        home.write_atomic(&path, text.as_bytes())?;
        Ok(())
    }

    /// The settings as TOML with an explanatory comment header; parses back to an equal value.
    pub fn to_toml(&self) -> String {
        // Strings, string lists and a bool always serialize; `save` never writes the fallback.
        with_header(HEADER, self).unwrap_or_else(|_| HEADER.to_owned())
    }

    /// Whether `user` may address the twin here: the owner always; a blocked user never;
    /// anyone when `address` holds "members"; whoever an `address` glob matches; and anyone
    /// the [`AccessPolicy`]'s `rooms` list allows.
    pub fn may_address(&self, user: &UserId, access: &AccessPolicy) -> bool {
        if user == access.owner() {
            return true;
        }
        if access.is_blocked(user) {
            return false;
        }
        access.may_use_in_rooms(user)
            || self.address.iter().any(|entry| match entry.as_str() {
                MEMBERS => true,
                OWNER => false,
                // A glob that does not compile matches nobody: a broken entry never opens access.
                glob => globset::Glob::new(glob)
                    .map(|g| g.compile_matcher().is_match(user.as_str()))
                    .unwrap_or(false),
            })
    }

    /// Applies the words of `!ai policy room ...` (without `!ai policy room`):
    /// `address members`, `address owner @bob:x`, `unprompted on|off`,
    /// `tools read_file list_files`, `tools all`, `tools none`.
    ///
    /// Returns a sentence saying what changed, or [`PolicyError::Command`] with usage help;
    /// nothing changes on an error.
    pub fn apply_command(&mut self, words: &[&str]) -> Result<String, PolicyError> {
        match words {
            [] => Err(usage("Which room setting?")),
            ["address"] => Err(usage("`address` needs owner, members or user ID globs.")),
            ["address", entries @ ..] => {
                for entry in entries {
                    check_address(entry).map_err(|message| usage(&message))?;
                }
                let mut address: Vec<String> = Vec::new();
                for entry in entries {
                    if !address.iter().any(|e| e == entry) {
                        address.push((*entry).to_owned());
                    }
                }
                self.address = address;
                Ok(self.address_sentence())
            }
            ["unprompted", value] => {
                self.unprompted = match *value {
                    "on" | "true" | "yes" => true,
                    "off" | "false" | "no" => false,
                    other => return Err(usage(&format!("`{other}` is not on or off."))),
                };
                Ok(self.unprompted_sentence().to_owned())
            }
            ["unprompted", ..] => Err(usage("`unprompted` takes on or off.")),
            ["tools"] => Err(usage("`tools` needs tool names, all or none.")),
            ["tools", "all"] => {
                self.tools = None;
                Ok("The twin may use every tool the conversation allows in this room.".into())
            }
            ["tools", "none"] => {
                self.tools = Some(Vec::new());
                Ok("The twin uses no tools in this room.".into())
            }
            ["tools", names @ ..] => {
                for name in names {
                    if matches!(*name, "all" | "none") {
                        return Err(usage(&format!("`{name}` cannot be mixed with tool names.")));
                    }
                    check_tool(name).map_err(|message| usage(&message))?;
                }
                let mut tools: Vec<String> = Vec::new();
                for name in names {
                    if !tools.iter().any(|t| t == name) {
                        tools.push((*name).to_owned());
                    }
                }
                let sentence = format!("The twin may use only {} in this room.", code_list(&tools));
                self.tools = Some(tools);
                Ok(sentence)
            }
            ["stream", value] => {
                self.stream = match *value {
                    "on" | "true" | "yes" => Some(true),
                    "off" | "false" | "no" => Some(false),
                    "default" => None,
                    other => {
                        return Err(usage(&format!("`{other}` is not on, off or default.")));
                    }
                };
                Ok(match self.stream {
                    Some(false) => "Answers in this room now come in one message at the end.",
                    Some(true) => "Answers in this room are now written in as they come.",
                    None => "Answers in this room now follow the twin's `stream` setting.",
                }
                .to_owned())
            }
            ["stream", ..] => Err(usage("`stream` takes on, off or default.")),
            [other, ..] => Err(usage(&format!("`{other}` is not a room setting."))),
        }
    }

    /// A short Markdown summary for `!ai status` / `!ai policy`.
    pub fn describe(&self) -> String {
        let tools = match &self.tools {
            None => "whatever the conversation allows".to_owned(),
            Some(tools) if tools.is_empty() => "none".to_owned(),
            Some(tools) => code_list(tools),
        };
        [
            "**This room**".to_owned(),
            format!("- **Who may address the twin:** {}", self.address_who()),
            format!(
                "- **Unprompted:** {}",
                if self.unprompted {
                    "on (answers every message of those people)"
                } else {
                    "off (answers only when addressed)"
                }
            ),
            format!("- **Tools:** {tools}"),
            format!(
                "- **Streaming:** {}",
                match self.stream {
                    Some(false) => "off (one message at the end)",
                    Some(true) => "on (written in by edits)",
                    None => "the twin's setting",
                }
            ),
        ]
        .join("\n")
    }

    fn address_who(&self) -> String {
        if self.address.iter().any(|e| e == MEMBERS) {
            return "everyone in the room who is not blocked".to_owned();
        }
        let globs: Vec<&String> = self.address.iter().filter(|e| *e != OWNER).collect();
        if globs.is_empty() {
            "the owner only".to_owned()
        } else {
            format!("the owner and {}", code_list(&globs))
        }
    }

    fn address_sentence(&self) -> String {
        if self.address.iter().any(|e| e == MEMBERS) {
            return "Everyone in this room who is not blocked may now address the twin.".into();
        }
        let globs: Vec<&String> = self.address.iter().filter(|e| *e != OWNER).collect();
        if globs.is_empty() {
            "Only the owner may now address the twin in this room.".into()
        } else {
            format!(
                "The owner and {} may now address the twin in this room.",
                code_list(&globs)
            )
        }
    }

    fn unprompted_sentence(&self) -> &'static str {
        if self.unprompted {
            "The twin now answers every message of those who may address it in this room."
        } else {
            "The twin now answers in this room only when addressed."
        }
    }
}

/// Checks one `address` entry: "owner", "members" or a user ID glob.
fn check_address(entry: &str) -> Result<(), String> {
    if matches!(entry, OWNER | MEMBERS) {
        return Ok(());
    }
    check_user_glob(entry).map_err(|e| format!("{e} (or use `owner` or `members`)"))
}

/// Checks a tool name: letters, digits, `_`, `-` and `.`.
fn check_tool(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a tool name (tool names look like `read_file`)"
        ))
    }
}
