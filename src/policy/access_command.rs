//! `!ai policy ...` commands on an [`AccessFile`] and the human summary of an
//! [`AccessPolicy`].

use super::access::{ACCESS_FILE, AccessFile, AccessPolicy};
use super::glob::{BadGlob, check_server_glob, check_user_glob};
use super::{PolicyError, code_list};

/// How the access commands are used, shown with every mistake.
const USAGE: &str = "\
Usage:
- `!ai policy` shows the policy
- `!ai policy <list> add <glob>...` / `!ai policy <list> remove <glob>...`, where <list> is \
`dm`, `invite`, `rooms`, `bots`, `blocked` (user ID globs such as `@bob:example.org` or \
`@*:friends.org`) or `federation` (server name globs such as `friends.org` or `*`)
- `!ai policy pairing on|off|default`
- `!ai policy room ...` changes the settings of the current room";

/// The lists a command may name, with what they are called in sentences.
const LISTS: [(&str, &str); 6] = [
    ("dm", "direct messages (dm)"),
    ("invite", "invites (invite)"),
    ("rooms", "rooms"),
    ("bots", "bots"),
    ("blocked", "blocked"),
    ("federation", "federation"),
];

fn usage(problem: &str) -> PolicyError {
    PolicyError::Command(format!("{problem}\n\n{USAGE}"))
}

impl AccessFile {
    /// Applies the words of `!ai policy ...` (without `!ai policy`): `dm add <glob>...`,
    /// `dm remove <glob>...`, the same for `invite`, `rooms`, `bots`, `blocked` and
    /// `federation`, and `pairing on|off|default`. Globs are checked before anything changes.
    ///
    /// Returns a sentence saying what changed, or [`PolicyError::Command`] with usage help.
    /// `room ...` is not handled here: it belongs to [`super::RoomSettings::apply_command`].
    pub fn apply_command(&mut self, words: &[&str]) -> Result<String, PolicyError> {
        match words {
            [] => Err(usage("Which setting?")),
            ["pairing", value] => self.set_pairing(value),
            ["pairing", ..] => Err(usage("`pairing` takes one of on, off or default.")),
            [list, action, globs @ ..] if list_name(list).is_some() => {
                if globs.is_empty() {
                    return Err(usage(&format!(
                        "`{list} {action}` needs at least one glob."
                    )));
                }
                match *action {
                    "add" => self.add(list, globs),
                    "remove" | "rm" => self.remove(list, globs),
                    other => Err(usage(&format!("`{other}` is not add or remove."))),
                }
            }
            [list] if list_name(list).is_some() => {
                Err(usage(&format!("`{list}` needs add or remove and a glob.")))
            }
            [other, ..] => Err(usage(&format!("`{other}` is not a policy setting."))),
        }
    }

    fn set_pairing(&mut self, value: &str) -> Result<String, PolicyError> {
        let (pairing, sentence) = match value {
            "on" | "true" | "yes" => (
                Some(true),
                "Pairing is on: people on no list may ask you for access.",
            ),
            "off" | "false" | "no" => (
                Some(false),
                "Pairing is off: people on no list are not answered.",
            ),
            "default" => (None, "Pairing now follows the server's default."),
            other => {
                return Err(usage(&format!("`{other}` is not on, off or default.")));
            }
        };
        self.pairing = pairing;
        Ok(sentence.to_owned())
    }

    fn add(&mut self, list: &str, globs: &[&str]) -> Result<String, PolicyError> {
        for glob in globs {
            let checked = if list == "federation" {
                check_server_glob(glob)
            } else {
                check_user_glob(glob)
            };
            checked.map_err(|e: BadGlob| usage(&e.to_string()))?;
        }
        let still_blocked: Vec<&str> = if list == "blocked" {
            Vec::new()
        } else {
            globs
                .iter()
                .copied()
                .filter(|glob| self.blocked.iter().any(|b| b == glob))
                .collect()
        };
        let entries = self.list_mut(list)?;
        let (mut added, mut present) = (Vec::new(), Vec::new());
        for glob in globs {
            if entries.iter().any(|e| e == glob) || added.contains(glob) {
                present.push(*glob);
            } else {
                entries.push((*glob).to_owned());
                added.push(*glob);
            }
        }
        let name = list_name(list).unwrap_or(list);
        let mut sentence = Vec::new();
        if !added.is_empty() {
            sentence.push(format!("Added {} to {name}.", code_list(&added)));
        }
        if !present.is_empty() {
            sentence.push(format!("Already in {name}: {}.", code_list(&present)));
        }
        if !still_blocked.is_empty() {
            sentence.push(format!(
                "Still blocked (blocked wins): {}; `!ai policy blocked remove ...` lets them in.",
                code_list(&still_blocked)
            ));
        }
        Ok(sentence.join(" "))
    }

    fn remove(&mut self, list: &str, globs: &[&str]) -> Result<String, PolicyError> {
        let entries = self.list_mut(list)?;
        let (mut removed, mut absent) = (Vec::new(), Vec::new());
        for glob in globs {
            let before = entries.len();
            entries.retain(|e| e != glob);
            if entries.len() < before {
                removed.push(*glob);
            } else if !removed.contains(glob) {
                absent.push(*glob);
            }
        }
        let name = list_name(list).unwrap_or(list);
        let mut sentence = Vec::new();
        if !removed.is_empty() {
            sentence.push(format!("Removed {} from {name}.", code_list(&removed)));
        }
        if !absent.is_empty() {
            sentence.push(format!(
                "Not in {name} (nothing changed for them): {}.",
                code_list(&absent)
            ));
        }
        Ok(sentence.join(" "))
    }

    fn list_mut(&mut self, list: &str) -> Result<&mut Vec<String>, PolicyError> {
        Ok(match list {
            "dm" => &mut self.dm,
            "invite" => &mut self.invite,
            "rooms" => &mut self.rooms,
            "bots" => &mut self.bots,
            "blocked" => &mut self.blocked,
            "federation" => &mut self.federation,
            other => return Err(usage(&format!("`{other}` is not a policy list."))),
        })
    }
}

fn list_name(list: &str) -> Option<&'static str> {
    LISTS
        .iter()
        .find(|(key, _)| *key == list)
        .map(|(_, name)| *name)
}

/// `owner only` / `owner, `@bob:x`, `@*:y` (server default)`.
fn who(own: &[String], default: &[String], nobody: &str) -> String {
    let mut parts = Vec::new();
    if !own.is_empty() {
        parts.push(code_list(own));
    }
    if !default.is_empty() {
        parts.push(format!("{} (server default)", code_list(default)));
    }
    if parts.is_empty() {
        nobody.to_owned()
    } else {
        parts.join(", ")
    }
}

impl AccessPolicy {
    /// A short Markdown summary for `!ai policy` and `!ai status`.
    pub fn describe(&self) -> String {
        let file = self.file();
        let defaults = self.defaults();
        let with_owner = |own: &[String], default: &[String]| {
            let people = who(own, default, "");
            if people.is_empty() {
                "owner only".to_owned()
            } else {
                format!("owner and {people}")
            }
        };
        let own_server = self.owner().server_name();
        let federation = if file.federation.is_empty() {
            format!("`{own_server}` only")
        } else {
            format!("`{own_server}` and {}", code_list(&file.federation))
        };
        let pairing = if self.pairing() {
            "on: people on no list may ask you for access"
        } else {
            "off: people on no list are not answered"
        };
        [
            format!("**Access policy** of `{}` (`{ACCESS_FILE}`)", self.owner()),
            format!(
                "- **Direct messages:** {}",
                with_owner(&file.dm, &defaults.dm)
            ),
            format!(
                "- **Invites:** {}",
                with_owner(&file.invite, &defaults.invite)
            ),
            format!(
                "- **In any room:** {}",
                with_owner(&file.rooms, &defaults.rooms)
            ),
            format!("- **Bots:** {}", who(&file.bots, &defaults.bots, "none")),
            format!("- **Blocked:** {}", who(&file.blocked, &[], "nobody")),
            format!("- **Servers:** {federation}"),
            format!("- **Pairing:** {pairing}"),
        ]
        .join("\n")
    }
}
