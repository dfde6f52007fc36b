//! `dev.matrixos.a2a.accept`: the receiver of an offer (a request or a counter) takes one of its
//! slots. The side that made the offer answers with a confirm.

use serde::{Deserialize, Serialize};

use crate::protocol::time::Interval;

/// Content of `dev.matrixos.a2a.accept` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// One of the slots the other side offered, unchanged.
    pub slot: Interval,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::protocol::events::samples;

    #[test]
    fn accept_wire_format() {
        insta::assert_json_snapshot!(samples::accept());
    }
}
