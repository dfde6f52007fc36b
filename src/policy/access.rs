//! `system/access.toml`: who may reach an owner's twin, and how.

use globset::GlobSet;
use ruma::{OwnedUserId, ServerName, UserId};
use serde::{Deserialize, Serialize};

use super::glob::{BadGlob, server_set, user_set};
use super::{PolicyError, invalid, with_header};
use crate::config::AccessConfig;
use crate::home::{Home, HomeError};

/// Where an owner's access policy lives, relative to the home.
pub const ACCESS_FILE: &str = "system/access.toml";

/// What [`AccessFile::to_toml`] puts above the values, so the file explains itself.
const HEADER: &str = "\
# Who may reach this twin. Lists hold user ID globs matched against the full ID:
# \"@bob:example.org\", \"@*:friends.org\", \"*\" (everyone). The owner is always allowed.
#
# dm         may talk to the twin in direct messages
# invite     may invite the twin into rooms
# rooms      may address the twin in any room it is in (see also system/rooms/)
# bots       are bots: the twin answers them only a few turns in a row
# blocked    are never answered (wins over every other list)
# federation server names whose users may reach the twin at all (\"friends.org\",
#            \"*.friends.org\", \"*\"); the owner's own server is always trusted
# pairing    whether people on no list may ask the owner for access
#
# The server's config may add defaults to dm, invite, rooms, bots and pairing.
# `!ai policy` in a chat with the twin shows and changes this file.
";

/// The shape of `system/access.toml` in an owner's home. Every list holds MXID globs matched
/// against the full MXID (`@bob:example.org`, `@*:friends.org`, `*`), except `federation`,
/// which holds server-name globs. Missing keys are empty / default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessFile {
    /// Who may talk to the twin in direct messages.
    pub dm: Vec<String>,
    /// Who may invite the twin into rooms.
    pub invite: Vec<String>,
    /// Who may address the twin in any room it is in.
    pub rooms: Vec<String>,
    /// Which users are bots (bot-to-bot conversations are bounded).
    pub bots: Vec<String>,
    /// Who is never answered; wins over every other list, but never applies to the owner.
    pub blocked: Vec<String>,
    /// Server-name globs whose users may reach the twin; the owner's server always may.
    pub federation: Vec<String>,
    /// Whether people on no list may ask the owner for access; `None`: the config's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairing: Option<bool>,
}

impl AccessFile {
    /// Adds `user` (exact MXID) to `dm` (once) and removes exact matches from `blocked`.
    pub fn approve(&mut self, user: &UserId) {
        let id = user.as_str();
        self.blocked.retain(|glob| glob != id);
        if !self.dm.iter().any(|glob| glob == id) {
            self.dm.push(id.to_owned());
        }
    }

    /// Adds `user` to `blocked` (once) and removes exact matches from `dm`.
    pub fn deny(&mut self, user: &UserId) {
        let id = user.as_str();
        self.dm.retain(|glob| glob != id);
        if !self.blocked.iter().any(|glob| glob == id) {
            self.blocked.push(id.to_owned());
        }
    }

    /// Serialised with a short explanatory comment header (TOML comments); parses back to an
    /// equal value.
    pub fn to_toml(&self) -> String {
        // Strings, string lists and a bool always serialize; `save` never writes the fallback.
        with_header(HEADER, self).unwrap_or_else(|_| HEADER.to_owned())
    }

    /// Parses the text of an access file; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| invalid(path, e.to_string().trim_end()))
    }

    /// Writes [`ACCESS_FILE`] atomically via [`Home::write_atomic`] (does not commit; the
    /// caller commits).
    pub fn save(&self, home: &Home) -> Result<(), PolicyError> {
        let text = with_header(HEADER, self).map_err(|e| invalid(ACCESS_FILE, e.to_string()))?;
        home.write_atomic(ACCESS_FILE, text.as_bytes())?;
        Ok(())
    }
}

/// An owner's access policy: their [`AccessFile`] plus the config's defaults, compiled.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    owner: OwnedUserId,
    file: AccessFile,
    /// The config's default lists, kept for [`AccessPolicy::describe`].
    defaults: AccessConfig,
    dm: GlobSet,
    invite: GlobSet,
    rooms: GlobSet,
    bots: GlobSet,
    blocked: GlobSet,
    federation: GlobSet,
    pairing: bool,
}

impl AccessPolicy {
    /// Compiles `file` together with the config's `defaults` (each list of the file is added
    /// to the config's list of the same name). A bad glob in the file is a
    /// [`PolicyError::Invalid`] naming [`ACCESS_FILE`]; one in the config names the config key.
    pub fn new(
        owner: &UserId,
        file: AccessFile,
        defaults: &AccessConfig,
    ) -> Result<Self, PolicyError> {
        let in_file = |list: &'static str, e: BadGlob| invalid(ACCESS_FILE, format!("{list}: {e}"));
        let in_config = |key: &'static str, e: BadGlob| invalid("config", format!("{key}: {e}"));
        // Config globs are checked first: a bad one is the admin's to fix, not the owner's.
        for (key, list) in [
            ("access.dm", &defaults.dm),
            ("access.invite", &defaults.invite),
            ("access.rooms", &defaults.rooms),
            ("access.bots", &defaults.bots),
        ] {
            user_set(list).map_err(|e| in_config(key, e))?;
        }
        let users = |list: &'static str, own: &Vec<String>, default: &Vec<String>| {
            user_set(own.iter().chain(default)).map_err(|e| in_file(list, e))
        };
        let none = Vec::new();
        Ok(Self {
            dm: users("dm", &file.dm, &defaults.dm)?,
            invite: users("invite", &file.invite, &defaults.invite)?,
            rooms: users("rooms", &file.rooms, &defaults.rooms)?,
            bots: users("bots", &file.bots, &defaults.bots)?,
            blocked: users("blocked", &file.blocked, &none)?,
            federation: server_set(&file.federation).map_err(|e| in_file("federation", e))?,
            pairing: file.pairing.unwrap_or(defaults.pairing),
            owner: owner.to_owned(),
            defaults: defaults.clone(),
            file,
        })
    }

    /// Reads [`ACCESS_FILE`] from the home (a missing file means the defaults only).
    /// Malformed TOML or a bad glob is a [`PolicyError::Invalid`] naming the file and the
    /// problem; callers then fall back to [`AccessPolicy::owner_only`].
    pub fn load(home: &Home, owner: &UserId, defaults: &AccessConfig) -> Result<Self, PolicyError> {
        let file = match home.read_to_string(ACCESS_FILE) {
            Ok(text) => AccessFile::parse(&text, ACCESS_FILE)?,
            Err(HomeError::NotFound(_)) => AccessFile::default(),
            Err(HomeError::Other(message)) => return Err(invalid(ACCESS_FILE, message)),
            Err(e) => return Err(e.into()),
        };
        Self::new(owner, file, defaults)
    }

    /// Owner-only policy (used when the file is broken, so a broken file never opens access):
    /// nobody but the owner may DM, invite or use the twin, nobody is a bot, only the owner's
    /// server is trusted and pairing is off.
    pub fn owner_only(owner: &UserId) -> Self {
        Self {
            owner: owner.to_owned(),
            file: AccessFile::default(),
            defaults: AccessConfig {
                pairing: false,
                ..AccessConfig::default()
            },
            dm: GlobSet::empty(),
            invite: GlobSet::empty(),
            rooms: GlobSet::empty(),
            bots: GlobSet::empty(),
            blocked: GlobSet::empty(),
            federation: GlobSet::empty(),
            pairing: false,
        }
    }

    /// The owner whose policy this is.
    pub fn owner(&self) -> &UserId {
        &self.owner
    }

    /// Whether `user` may talk to the twin in a direct message: the owner always, a blocked
    /// user never, otherwise whoever the `dm` globs (file and config) match.
    ///
    /// This does not look at `federation`; callers check [`AccessPolicy::federation_allows`]
    /// for the sender's server as well.
    pub fn may_dm(&self, user: &UserId) -> bool {
        self.allowed(&self.dm, user)
    }

    /// Whether `user` may invite the twin into a room: the owner always, a blocked user
    /// never, otherwise whoever the `invite` globs match.
    pub fn may_invite(&self, user: &UserId) -> bool {
        self.allowed(&self.invite, user)
    }

    /// Whether `user` may address the twin in any room it is in: the owner always, a blocked
    /// user never, otherwise whoever the `rooms` globs match.
    pub fn may_use_in_rooms(&self, user: &UserId) -> bool {
        self.allowed(&self.rooms, user)
    }

    /// Whether `user` is a bot (matched by the `bots` globs); the owner never is.
    pub fn is_bot(&self, user: &UserId) -> bool {
        !self.is_owner(user) && self.bots.is_match(user.as_str())
    }

    /// Whether `user` is blocked; never true for the owner.
    pub fn is_blocked(&self, user: &UserId) -> bool {
        !self.is_owner(user) && self.blocked.is_match(user.as_str())
    }

    /// Whether users of `server` may reach the twin: the `federation` globs match the server
    /// name (`*` matches all, case-insensitively); the owner's own server is always allowed.
    pub fn federation_allows(&self, server: &ServerName) -> bool {
        server == self.owner.server_name() || self.federation.is_match(server.as_str())
    }

    /// Whether people on no list may ask the owner for access: the file's `pairing`, else the
    /// config's default.
    pub fn pairing(&self) -> bool {
        self.pairing
    }

    /// The owner's file as loaded (without the config's defaults).
    pub fn file(&self) -> &AccessFile {
        &self.file
    }

    /// The config's defaults this policy was built with.
    pub fn defaults(&self) -> &AccessConfig {
        &self.defaults
    }

    fn is_owner(&self, user: &UserId) -> bool {
        user == self.owner
    }

    fn allowed(&self, list: &GlobSet, user: &UserId) -> bool {
        self.is_owner(user) || (!self.is_blocked(user) && list.is_match(user.as_str()))
    }
}
