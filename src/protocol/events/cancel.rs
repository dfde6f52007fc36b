//! `dev.matrixos.a2a.cancel`: a confirmed meeting is called off. Either side may send it, any time
//! after the confirm; before the confirm a side ends the negotiation with a decline (`cancelled`).

use serde::{Deserialize, Serialize};

use crate::protocol::{MAX_TEXT, ids::Uid, ids::check_text};

/// Content of `dev.matrixos.a2a.cancel` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// The UID from the confirm.
    pub uid: Uid,
    /// Why, in the cancelling owner's words: 1 to 1000 characters.
    pub reason: String,
}

impl Cancel {
    /// Checks the rules the JSON shape cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        check_text("reason", &self.reason, 1, MAX_TEXT)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::protocol::events::samples;

    #[test]
    fn cancel_wire_format() {
        insta::assert_json_snapshot!(samples::cancel());
    }
}
