//! The only label values any metric carries: small fixed enums, never IDs or free text, so the
//! number of time series stays bounded and nothing about users leaks into monitoring.

/// Why a turn failed: the `kind` label of `matrixos_turn_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnErrorKind {
    /// The model provider failed (HTTP error, retries exhausted, unusable answer).
    Provider,
    /// The turn ran past its deadline.
    Deadline,
    /// The database failed during the turn.
    Storage,
    /// The reply could not be sent (or encrypted) to the room.
    Send,
    /// Anything else: a bug or an unexpected state.
    Internal,
}

impl TurnErrorKind {
    /// Every kind, in label order.
    pub const ALL: [Self; 5] = [
        Self::Provider,
        Self::Deadline,
        Self::Storage,
        Self::Send,
        Self::Internal,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Deadline => "deadline",
            Self::Storage => "storage",
            Self::Send => "send",
            Self::Internal => "internal",
        }
    }
}

/// Which way tokens went: the `direction` label of `matrixos_model_tokens_total`.
/// `cache_read` and `cache_write` are parts of `input`, not added to it: the share of the
/// prompt the provider served from its prompt cache is `cache_read / input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenDirection {
    /// Prompt tokens sent to the model, all of them.
    Input,
    /// Completion tokens the model produced.
    Output,
    /// Of the input, tokens read from the provider's prompt cache.
    CacheRead,
    /// Of the input, tokens written to the provider's prompt cache.
    CacheWrite,
}

impl TokenDirection {
    /// Every direction, in label order.
    pub const ALL: [Self; 4] = [Self::Input, Self::Output, Self::CacheRead, Self::CacheWrite];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::CacheRead => "cache_read",
            Self::CacheWrite => "cache_write",
        }
    }
}

/// Label names in use and the values each may take, for the test that no other label appears.
#[cfg(test)]
pub(super) fn allowed(label: &str) -> Option<Vec<&'static str>> {
    match label {
        "kind" => Some(TurnErrorKind::ALL.iter().map(|k| k.as_str()).collect()),
        "direction" => Some(TokenDirection::ALL.iter().map(|d| d.as_str()).collect()),
        "reason" => Some(RefusedReason::ALL.iter().map(|r| r.as_str()).collect()),
        _ => None,
    }
}

/// Why an event was refused: the `reason` label of `matrixos_events_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusedReason {
    /// A plaintext message or protocol event in a room that is encrypted.
    PlaintextInEncryptedRoom,
    /// A decrypted payload that was not a message-like event (a `state_key`, a state type).
    NotMessageLike,
    /// The owner wrote from a device their identity has not cross-signed.
    UnverifiedOwnerDevice,
    /// A device its user's cross-signing identity has not signed (one the homeserver or
    /// someone else could have added).
    UnsignedDevice,
}

impl RefusedReason {
    /// Every reason, in label order.
    pub const ALL: [Self; 4] = [
        Self::PlaintextInEncryptedRoom,
        Self::NotMessageLike,
        Self::UnverifiedOwnerDevice,
        Self::UnsignedDevice,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlaintextInEncryptedRoom => "plaintext_in_encrypted_room",
            Self::NotMessageLike => "not_message_like",
            Self::UnverifiedOwnerDevice => "unverified_owner_device",
            Self::UnsignedDevice => "unsigned_device",
        }
    }
}
