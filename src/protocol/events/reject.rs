//! `dev.matrixos.a2a.reject`: the sender could not take an event it received.
//!
//! A reject stands outside the negotiation's sequence: it has no `seq`, is never answered (not
//! even with another reject), and receiving it twice has the same effect as once.

use serde::{Deserialize, Serialize};

use crate::protocol::{
    MAX_TEXT,
    ids::{NegotiationId, check_id, check_text},
};

/// Content of `dev.matrixos.a2a.reject` (besides `version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// The rejected event's negotiation; `null` when it could not be read from the event.
    #[serde(deserialize_with = "Option::deserialize")]
    pub negotiation_id: Option<NegotiationId>,
    /// What was wrong.
    pub code: RejectCode,
    /// What was wrong, for a person reading logs: 0 to 1000 characters.
    pub detail: String,
    /// The rejected event's Matrix type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The rejected event's Matrix event ID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The protocol versions the sender speaks, so that a peer rejected with `unknown_version`
    /// can start again in one of them.
    pub versions: Vec<String>,
}

/// Why an event was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The event's `version` is not one the receiver speaks.
    UnknownVersion,
    /// The content does not follow the protocol: wrong JSON shape, unknown field, a value out of
    /// range, or slots that do not fit the negotiation.
    Malformed,
    /// The event is valid but not expected now, e.g. a confirm before any accept.
    OutOfOrder,
    /// The receiver has no negotiation with this ID (it never saw the hello, or forgot it).
    UnknownNegotiation,
    /// The sender is not the twin this negotiation is with, or its hello names the wrong owner.
    NotAllowed,
}

impl Reject {
    /// A rejection with matrix-os' supported versions, dropping an `event_type` or `event_id` that
    /// is not a valid identifier (so a reject never echoes arbitrary input), and making `detail`
    /// valid text: control characters replaced, at most 1000 characters.
    pub fn new(
        negotiation_id: Option<NegotiationId>,
        code: RejectCode,
        detail: impl Into<String>,
        event_type: Option<&str>,
        event_id: Option<&str>,
    ) -> Self {
        let valid = |s: Option<&str>| s.filter(|s| check_id(s).is_ok()).map(str::to_owned);
        Reject {
            negotiation_id,
            code,
            detail: crate::protocol::ids::clean_text(&detail.into(), MAX_TEXT),
            event_type: valid(event_type),
            event_id: valid(event_id),
            versions: crate::protocol::supported_versions(),
        }
    }

    /// Checks the rules the JSON shape cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        check_text("detail", &self.detail, 0, MAX_TEXT)?;
        for (field, value) in [
            ("event_type", &self.event_type),
            ("event_id", &self.event_id),
        ] {
            if let Some(value) = value {
                check_id(value).map_err(|e| format!("{field}: {e}"))?;
            }
        }
        crate::protocol::check_versions(&self.versions)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::protocol::events::samples;

    #[test]
    fn reject_wire_format() {
        insta::assert_json_snapshot!(samples::reject());
    }

    #[test]
    fn a_reject_of_unreadable_content_carries_a_null_negotiation_id() {
        let reject = Reject::new(
            None,
            RejectCode::Malformed,
            "not an object",
            Some("x y"),
            None,
        );
        let json = serde_json::to_value(&reject).unwrap();
        assert_eq!(json["negotiation_id"], serde_json::Value::Null);
        assert!(
            json.get("event_type").is_none(),
            "an invalid event type is not echoed"
        );
    }

    #[test]
    fn negotiation_id_must_be_present_even_when_null() {
        let mut json = serde_json::to_value(samples::reject()).unwrap();
        json.as_object_mut().unwrap().remove("version");
        json.as_object_mut().unwrap().remove("negotiation_id");
        assert!(serde_json::from_value::<Reject>(json).is_err());
    }
}
