//! `dev.matrixos.a2a.confirm`: the side whose offer was accepted books the meeting and tells the
//! other side the iCalendar UID it booked it under. Both calendars use that UID.

use serde::{Deserialize, Serialize};

use crate::protocol::{ids::Uid, time::Interval};

/// Content of `dev.matrixos.a2a.confirm` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The accepted slot, unchanged.
    pub slot: Interval,
    /// The meeting's iCalendar UID.
    pub uid: Uid,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::protocol::events::samples;

    #[test]
    fn confirm_wire_format() {
        insta::assert_json_snapshot!(samples::confirm());
    }
}
