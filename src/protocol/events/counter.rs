//! `dev.matrixos.a2a.counter`: the responder could take none of the requested slots and offers
//! its own free slots instead.
//!
//! Sent only by the responder, only in answer to a request, at most once per negotiation. The
//! slots follow the request's rules (inside its window, its duration), which the receiver checks
//! against the request it sent.

use serde::{Deserialize, Serialize};

use super::check_slot_list;
use crate::protocol::time::Interval;

/// Content of `dev.matrixos.a2a.counter` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    /// The responder's free slots, earliest first: 1 to 50.
    pub slots: Vec<Interval>,
}

impl Counter {
    /// Checks the rules the JSON shape cannot express (those that need no request).
    pub(crate) fn validate(&self) -> Result<(), String> {
        check_slot_list(&self.slots)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::protocol::events::samples;

    #[test]
    fn counter_wire_format() {
        insta::assert_json_snapshot!(samples::counter());
    }
}
