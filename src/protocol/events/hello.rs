//! `dev.matrixos.a2a.hello`: a twin introduces itself, its owner and what it speaks.
//!
//! Each side's first event in a negotiation is its hello: the requester sends it right before its
//! request, the responder answers the requester's hello with its own. The hello is how a twin
//! found by the naming convention (`@bob` -> `@bob_ai`) is confirmed: it names its owner, and
//! the receiver checks that owner against the one it meant to reach.

use ruma::{OwnedUserId, UserId};
use serde::{Deserialize, Serialize};

use crate::protocol::{MEETING_SCHEDULING, check_versions, ids::check_text, supported_versions};

/// Content of `dev.matrixos.a2a.hello` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// The human the twin acts for.
    pub owner: OwnedUserId,
    /// The twin itself: must be the event's sender and on the owner's homeserver.
    pub twin: OwnedUserId,
    /// Every protocol version the sender speaks; includes the event's own `version`.
    pub versions: Vec<String>,
    /// What the sender can negotiate; version 1 knows only `meeting-scheduling`, which is required.
    pub capabilities: Vec<String>,
    /// An A2A-compatible agent card describing the twin.
    pub agent_card: AgentCard,
}

/// An [A2A](https://a2a-protocol.org) agent card, with two matrix-os extensions (`owner`,
/// `protocolVersions`). Field names follow A2A (camelCase). Unknown fields are ignored here, unlike
/// everywhere else in the protocol, because A2A cards grow optional fields over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    /// A human-readable name, e.g. "Alice's twin".
    pub name: String,
    /// What the agent does.
    pub description: String,
    /// Where the agent is reached: for a twin, its `matrix:u/...` URI.
    pub url: String,
    /// The agent software's version.
    pub version: String,
    /// A2A transport capabilities; a twin supports none of them over Matrix.
    pub capabilities: AgentCapabilities,
    /// Media types the agent accepts.
    pub default_input_modes: Vec<String>,
    /// Media types the agent produces.
    pub default_output_modes: Vec<String>,
    /// What the agent can do; must include the `meeting-scheduling` skill.
    pub skills: Vec<AgentSkill>,
    /// matrix-os extension: the owner's MXID, equal to the hello's `owner`.
    pub owner: OwnedUserId,
    /// matrix-os extension: the protocol versions spoken, equal to the hello's `versions`.
    pub protocol_versions: Vec<String>,
}

/// A2A agent capabilities (all optional booleans).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    /// Server-sent-event streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    /// Push notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_notifications: Option<bool>,
    /// Task state history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_transition_history: Option<bool>,
}

/// One A2A skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSkill {
    /// Skill identifier, e.g. `meeting-scheduling`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// What the skill does.
    pub description: String,
    /// Keywords.
    pub tags: Vec<String>,
    /// Sample requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl Hello {
    /// The hello matrix-os sends for `twin`, acting for `owner`.
    pub fn new(owner: OwnedUserId, twin: OwnedUserId) -> Self {
        let versions = supported_versions();
        let agent_card = AgentCard {
            name: format!("AI twin of {owner}"),
            description: format!(
                "Schedules meetings for {owner} with other twins over the dev.matrixos.a2a protocol."
            ),
            url: matrix_uri(&twin),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: AgentCapabilities::default(),
            default_input_modes: vec!["application/json".to_owned()],
            default_output_modes: vec!["application/json".to_owned()],
            skills: vec![AgentSkill {
                id: MEETING_SCHEDULING.to_owned(),
                name: "Meeting scheduling".to_owned(),
                description: "Finds a common free slot with another twin and books it in both \
                              owners' calendars."
                    .to_owned(),
                tags: vec!["calendar".to_owned(), "scheduling".to_owned()],
                examples: Vec::new(),
            }],
            owner: owner.clone(),
            protocol_versions: versions.clone(),
        };
        Hello {
            owner,
            twin,
            versions,
            capabilities: vec![MEETING_SCHEDULING.to_owned()],
            agent_card,
        }
    }

    /// Checks the rules the JSON shape cannot express.
    pub(crate) fn validate(&self, own_version: &str) -> Result<(), String> {
        if self.twin == self.owner {
            return Err("twin and owner must be different users".into());
        }
        if self.twin.server_name() != self.owner.server_name() {
            return Err("twin must be on its owner's homeserver".into());
        }
        check_versions(&self.versions)?;
        if !self.versions.iter().any(|v| v == own_version) {
            return Err(format!(
                "versions must include the event's own version {own_version:?}"
            ));
        }
        check_capabilities(&self.capabilities)?;
        if !self.capabilities.iter().any(|c| c == MEETING_SCHEDULING) {
            return Err(format!("capabilities must include {MEETING_SCHEDULING:?}"));
        }
        self.agent_card.validate(&self.owner, &self.versions)
    }

    /// Whether `twin` is named after `owner` by matrix-os' convention: the owner's localpart plus
    /// `suffix` (`_ai` by default) on the same homeserver.
    pub fn twin_follows_convention(&self, suffix: &str) -> bool {
        self.twin.server_name() == self.owner.server_name()
            && self.twin.localpart() == format!("{}{suffix}", self.owner.localpart())
    }
}

impl AgentCard {
    fn validate(&self, owner: &UserId, versions: &[String]) -> Result<(), String> {
        check_text("agent_card.name", &self.name, 1, 255)?;
        check_text("agent_card.description", &self.description, 0, 1000)?;
        check_text("agent_card.version", &self.version, 1, 64)?;
        if url::Url::parse(&self.url).is_err() {
            return Err("agent_card.url must be an absolute URL".into());
        }
        for modes in [&self.default_input_modes, &self.default_output_modes] {
            if modes.len() > 16 {
                return Err("agent_card input/output modes: at most 16".into());
            }
            for mode in modes {
                check_text("agent_card media type", mode, 1, 255)?;
            }
        }
        if self.skills.is_empty() || self.skills.len() > 32 {
            return Err("agent_card.skills must hold 1 to 32 skills".into());
        }
        for skill in &self.skills {
            skill.validate()?;
        }
        if !self.skills.iter().any(|s| s.id == MEETING_SCHEDULING) {
            return Err(format!(
                "agent_card.skills must include {MEETING_SCHEDULING:?}"
            ));
        }
        if self.owner != owner {
            return Err("agent_card.owner must equal the hello's owner".into());
        }
        if self.protocol_versions != versions {
            return Err("agent_card.protocolVersions must equal the hello's versions".into());
        }
        Ok(())
    }
}

impl AgentSkill {
    fn validate(&self) -> Result<(), String> {
        check_text("skill id", &self.id, 1, 255)?;
        check_text("skill name", &self.name, 1, 255)?;
        check_text("skill description", &self.description, 0, 1000)?;
        if self.tags.len() > 32 || self.examples.len() > 32 {
            return Err("skill tags and examples: at most 32 each".into());
        }
        for text in self.tags.iter().chain(&self.examples) {
            check_text("skill tag or example", text, 1, 255)?;
        }
        Ok(())
    }
}

/// 1 to 32 capability names, each a lowercase word with dashes.
fn check_capabilities(capabilities: &[String]) -> Result<(), String> {
    if capabilities.is_empty() || capabilities.len() > 32 {
        return Err("capabilities must hold 1 to 32 names".into());
    }
    let well_formed = |c: &String| {
        !c.is_empty()
            && c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match capabilities.iter().find(|c| !well_formed(c)) {
        Some(c) => Err(format!(
            "capability {c:?} must be 1 to 64 of a-z, 0-9 and '-'"
        )),
        None => Ok(()),
    }
}

/// The `matrix:` URI of a user (Matrix spec, appendix "matrix: URI scheme").
fn matrix_uri(user: &UserId) -> String {
    let localpart: String =
        url::form_urlencoded::byte_serialize(user.localpart().as_bytes()).collect();
    format!("matrix:u/{localpart}:{}", user.server_name())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::owned_user_id;

    use super::*;
    use crate::protocol::{events::samples, parse};

    #[test]
    fn hello_wire_format() {
        insta::assert_json_snapshot!(samples::hello());
    }

    #[test]
    fn own_hello_is_valid_and_follows_the_convention() {
        let hello = Hello::new(
            owned_user_id!("@alice:hs1"),
            owned_user_id!("@alice_ai:hs1"),
        );
        assert_eq!(hello.validate("1"), Ok(()));
        assert!(hello.twin_follows_convention("_ai"));
        assert_eq!(hello.agent_card.url, "matrix:u/alice_ai:hs1");
    }

    #[test]
    fn a_twin_on_another_server_is_refused() {
        let hello = Hello::new(
            owned_user_id!("@alice:hs1"),
            owned_user_id!("@alice_ai:evil"),
        );
        assert!(hello.validate("1").unwrap_err().contains("homeserver"));
        assert!(!hello.twin_follows_convention("_ai"));
    }

    #[test]
    fn unknown_agent_card_fields_are_ignored_but_unknown_hello_fields_are_not() {
        let mut content = serde_json::to_value(samples::hello()).unwrap();
        content["agent_card"]["provider"] = serde_json::json!({"organization": "x"});
        assert!(parse(crate::protocol::types::HELLO, &content).is_ok());
        content["mood"] = serde_json::json!("happy");
        assert!(parse(crate::protocol::types::HELLO, &content).is_err());
    }
}
