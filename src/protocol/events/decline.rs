//! `dev.matrixos.a2a.decline`: the sender ends the negotiation without a meeting.
//!
//! Either side may send it at any point before the confirm; after it, no further events of the
//! negotiation are sent. A decline that arrives after a confirm (the confirm was lost and the
//! other side timed out) undoes the meeting.

use serde::{Deserialize, Serialize};

use crate::protocol::{MAX_TEXT, ids::check_text};

/// Content of `dev.matrixos.a2a.decline` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decline {
    /// Why, as a code the receiver can act on.
    pub reason: DeclineReason,
    /// Optional words for the owner: 1 to 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Why a negotiation was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// No offered slot fits the sender's free time, and it has nothing (more) to offer.
    NoCommonSlot,
    /// The sender's owner does not take meeting requests from this peer.
    NotAllowed,
    /// The sender's owner said no.
    OwnerDeclined,
    /// The sender waited too long for the other side or for its owner.
    Timeout,
    /// The sender's owner called the negotiation off before a meeting was agreed.
    Cancelled,
    /// Anything else; `text` should say what.
    Other,
}

impl Decline {
    /// Checks the rules the JSON shape cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match &self.text {
            Some(text) => check_text("text", text, 1, MAX_TEXT),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::protocol::events::samples;

    #[test]
    fn decline_wire_format() {
        insta::assert_json_snapshot!(samples::decline());
    }

    #[test]
    fn reasons_are_snake_case_codes() {
        let codes: Vec<_> = [
            DeclineReason::NoCommonSlot,
            DeclineReason::NotAllowed,
            DeclineReason::OwnerDeclined,
            DeclineReason::Timeout,
            DeclineReason::Cancelled,
            DeclineReason::Other,
        ]
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
        insta::assert_json_snapshot!(codes, @r#"
        [
          "no_common_slot",
          "not_allowed",
          "owner_declined",
          "timeout",
          "cancelled",
          "other"
        ]
        "#);
    }
}
