//! Identifiers and free text as the protocol allows them on the wire.
//!
//! Identifiers (`negotiation_id`, iCalendar `uid`, event types and IDs echoed in a rejection) are
//! 1 to 255 visible ASCII characters (`!` to `~`): no spaces, no control characters, nothing that
//! needs escaping in a log line or an iCalendar property.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest identifier the protocol accepts, in characters.
pub const MAX_ID_LEN: usize = 255;

/// Why a string is not a valid protocol identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is the empty string.
    #[error("identifier is empty")]
    Empty,
    /// The identifier is longer than [`MAX_ID_LEN`].
    #[error("identifier is {0} characters long, at most {MAX_ID_LEN} are allowed")]
    TooLong(usize),
    /// The identifier contains a space, a control character or non-ASCII text.
    #[error("identifier may only contain visible ASCII characters ('!' to '~')")]
    BadCharacter,
}

/// Checks the identifier rule shared by every ID on the wire.
pub(crate) fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdError::BadCharacter);
    }
    // All ASCII from here on, so bytes are characters.
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(s.len()));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s` against the identifier rule.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }

            /// The identifier as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type! {
    /// Names one negotiation: chosen by the requester (a random UUID is a good choice), carried by
    /// every event of that negotiation, and never reused.
    NegotiationId
}

id_type! {
    /// The iCalendar `UID` of an agreed meeting, chosen by the twin that confirms it. Both owners'
    /// calendars store the meeting under this UID, so a cancel can name it.
    Uid
}

impl From<NegotiationId> for Uid {
    /// matrix-os uses the negotiation's ID as the meeting's UID: it is unique and both sides know it.
    fn from(id: NegotiationId) -> Self {
        Self(id.0)
    }
}

/// Checks free text: between `min` and `max` characters, no control characters except newline and
/// tab. `field` names the field in the error message.
pub(crate) fn check_text(field: &str, s: &str, min: usize, max: usize) -> Result<(), String> {
    let len = s.chars().count();
    if len < min || len > max {
        return Err(format!(
            "{field} must be {min} to {max} characters long, not {len}"
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("{field} contains a control character"));
    }
    Ok(())
}

/// Makes echoed input fit the free-text rule: control characters other than newline and tab
/// become U+FFFD, and the text is cut to at most `max` characters.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Cuts `s` to at most `max` characters, so that echoed input cannot grow a rejection unboundedly.
pub(crate) fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_visible_ascii_up_to_255_characters() {
        assert!(NegotiationId::new("6f1c2e0a-9a8b-4c1d-8e7f-0123456789ab").is_ok());
        assert_eq!(NegotiationId::new(""), Err(IdError::Empty));
        assert_eq!(NegotiationId::new("a b"), Err(IdError::BadCharacter));
        assert_eq!(Uid::new("caf\u{e9}"), Err(IdError::BadCharacter));
        assert!(Uid::new("x".repeat(255)).is_ok());
        assert_eq!(Uid::new("x".repeat(256)), Err(IdError::TooLong(256)));
    }

    #[test]
    fn text_rejects_control_characters_but_keeps_newlines() {
        assert!(check_text("title", "Lunch\n(with tabs\t)", 1, 255).is_ok());
        assert!(check_text("title", "bell\u{7}", 1, 255).is_err());
        assert!(check_text("title", "", 1, 255).is_err());
        assert!(check_text("title", &"\u{e9}".repeat(255), 1, 255).is_ok());
    }

    #[test]
    fn cleaned_text_passes_the_text_rule() {
        let cleaned = clean_text("field\r\u{1b}[31m\nline\ttab\u{e9}", 1000);
        assert_eq!(cleaned, "field\u{fffd}\u{fffd}[31m\nline\ttab\u{e9}");
        assert!(check_text("detail", &cleaned, 0, 1000).is_ok());
        assert_eq!(clean_text(&"x".repeat(2000), 1000).len(), 1000);
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(
            truncate_chars("\u{e9}\u{e9}\u{e9}".into(), 2),
            "\u{e9}\u{e9}"
        );
        assert_eq!(truncate_chars("ab".into(), 5), "ab");
    }
}
