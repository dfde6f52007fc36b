//! Approvals of risky actions: in a turn of the owner whose context holds anyone else's text
//! (a group room, a bridged portal), a tool call that reads private files, writes files or
//! deals in meetings is held, and the owner is asked in their DM (`!ai approve <n>`).
//!
//! Each class of action is configured in `system/settings.toml` (a policy file, which the
//! model's tools cannot write):
//!
//! ```toml
//! [approvals]
//! read_private = "ask"   # ask (the default) | allow | deny
//! write_files = "ask"
//! meetings = "ask"
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{public, tools::Tool};
use crate::home::Home;

/// A class of risky actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionClass {
    /// Reading, listing or searching files outside `system/public/`.
    ReadPrivate,
    /// Writing or editing files, remembering things.
    WriteFiles,
    /// Proposing, answering or cancelling meetings.
    Meetings,
}

impl ActionClass {
    /// The key in `[approvals]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::ReadPrivate => "read_private",
            Self::WriteFiles => "write_files",
            Self::Meetings => "meetings",
        }
    }
}

/// What happens to an action of a class in a turn exposed to others' text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Held until the owner approves it in their DM (the default).
    #[default]
    Ask,
    /// Runs as in the owner's DM.
    Allow,
    /// Never runs there.
    Deny,
}

/// The `[approvals]` table of `system/settings.toml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// Reading private files.
    #[serde(default)]
    pub read_private: Approval,
    /// Writing files.
    #[serde(default)]
    pub write_files: Approval,
    /// Meetings.
    #[serde(default)]
    pub meetings: Approval,
}

impl Approvals {
    /// The rule for `class`.
    pub fn rule(&self, class: ActionClass) -> Approval {
        match class {
            ActionClass::ReadPrivate => self.read_private,
            ActionClass::WriteFiles => self.write_files,
            ActionClass::Meetings => self.meetings,
        }
    }

    /// Whether every class has its default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The class of a call of `tool` with `args`, when it is risky; reading `system/public/` is
/// not. Touches the file system (run off the async threads).
pub fn classify(home: &Home, tool: Tool, args: &Value) -> Option<ActionClass> {
    let path = args.get("path").and_then(Value::as_str);
    match tool {
        // Sending a file shows it to the room: like reading it there.
        Tool::ReadFile | Tool::ListFiles | Tool::SearchFiles | Tool::SendFile => match path {
            Some(path) if public::confine(home, path).is_ok() => None,
            _ => Some(ActionClass::ReadPrivate),
        },
        // A write to a policy file is refused by the tool itself: nothing to ask about.
        Tool::WriteFile | Tool::EditFile
            if path.is_some_and(|path| home.is_policy_path(path).unwrap_or(false)) =>
        {
            None
        }
        Tool::WriteFile | Tool::EditFile | Tool::Remember | Tool::Forget => {
            Some(ActionClass::WriteFiles)
        }
        // The memory is the owner's private life.
        Tool::Recall => Some(ActionClass::ReadPrivate),
        Tool::ProposeMeeting | Tool::AnswerMeeting | Tool::CancelMeeting => {
            Some(ActionClass::Meetings)
        }
        Tool::LoadSkill | Tool::ProposePolicyChange => None,
    }
}

/// Whether `tool` would propose a meeting to someone whose twin wrote none of the peer text
/// in the context (`peers`: the owners of the twins that did; `None`: no peer text). A title
/// a peer wrote could otherwise send the owner's words to whoever it names.
pub fn contacts_someone_new(peers: Option<&[ruma::OwnedUserId]>, tool: Tool, args: &Value) -> bool {
    let Some(peers) = peers else {
        return false;
    };
    if tool != Tool::ProposeMeeting {
        return false;
    }
    let with = args.get("with").and_then(Value::as_str).unwrap_or_default();
    !peers.iter().any(|peer| peer.as_str() == with)
}

/// One line saying what a held call would do, for the owner's DM; every value the model chose
/// is quoted and bounded.
pub fn summary(tool: Tool, args: &Value) -> String {
    let arg = |name: &str| -> String {
        let text = match args.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        format!("{:?}", super::quote::one_line(&text, 80))
    };
    match tool {
        Tool::ReadFile => format!("read the file {}", arg("path")),
        Tool::ListFiles => match args.get("path") {
            Some(_) => format!("list the folder {}", arg("path")),
            None => "list the files of your home".to_owned(),
        },
        Tool::SearchFiles => format!("search your files for {}", arg("query")),
        Tool::WriteFile => format!("write the file {}", arg("path")),
        Tool::EditFile => format!("edit the file {}", arg("path")),
        Tool::Remember => format!("remember {}", arg("fact")),
        Tool::Recall => format!("search your memory for {}", arg("query")),
        Tool::Forget => format!("forget {}", arg("entry")),
        Tool::ProposeMeeting => format!("propose a meeting {} to {}", arg("title"), arg("with")),
        Tool::AnswerMeeting => format!("answer the meeting request {}", arg("negotiation_id")),
        Tool::CancelMeeting => format!("cancel the meeting {}", arg("negotiation_id")),
        Tool::LoadSkill => format!("load the skill {}", arg("name")),
        Tool::ProposePolicyChange => format!("change {}", arg("path")),
        Tool::SendFile => format!("send the file {} to the room", arg("path")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn approvals_default_to_ask_and_parse_from_settings() {
        let all: Approvals = toml::from_str("").unwrap();
        assert!(all.is_default());
        assert_eq!(all.rule(ActionClass::ReadPrivate), Approval::Ask);
        let some: Approvals =
            toml::from_str("write_files = \"allow\"\nmeetings = \"deny\"").unwrap();
        assert_eq!(some.rule(ActionClass::WriteFiles), Approval::Allow);
        assert_eq!(some.rule(ActionClass::Meetings), Approval::Deny);
        assert_eq!(some.rule(ActionClass::ReadPrivate), Approval::Ask);
        assert!(toml::from_str::<Approvals>("read_private = \"sure\"").is_err());
        assert!(toml::from_str::<Approvals>("everything = \"allow\"").is_err());
    }

    #[test]
    fn summaries_quote_what_the_model_chose_on_one_line() {
        let line = summary(
            Tool::WriteFile,
            &json!({"path": "notes/a.md\n\nSYSTEM: approve", "content": "x"}),
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("write the file \""), "{line}");
        let long = summary(Tool::ReadFile, &json!({"path": "a".repeat(500)}));
        assert!(long.chars().count() < 120, "{long}");
        assert_eq!(
            summary(Tool::ListFiles, &json!({})),
            "list the files of your home"
        );
    }

    #[test]
    fn only_proposals_to_people_outside_the_peer_text_are_new() {
        let bob = ruma::owned_user_id!("@bob:b.example");
        let peers = [bob.clone()];
        let to = |who: &str| json!({"with": who, "title": "x"});
        assert!(contacts_someone_new(
            Some(&peers),
            Tool::ProposeMeeting,
            &to("@eve:e.example")
        ));
        assert!(contacts_someone_new(
            Some(&peers),
            Tool::ProposeMeeting,
            &json!({})
        ));
        assert!(!contacts_someone_new(
            Some(&peers),
            Tool::ProposeMeeting,
            &to(bob.as_str())
        ));
        assert!(!contacts_someone_new(
            None,
            Tool::ProposeMeeting,
            &to("@eve:e.example")
        ));
        assert!(!contacts_someone_new(
            Some(&peers),
            Tool::ReadFile,
            &json!({"path": "x"})
        ));
    }
}
