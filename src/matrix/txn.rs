//! Deterministic transaction ids, so that a send repeated after a crash is deduplicated by the
//! homeserver instead of posting twice.

use base64::Engine;
use ruma::OwnedTransactionId;
use sha2::{Digest, Sha256};

/// Which of the messages sent for one cause a transaction id is for: one cause (an event, a
/// negotiation step) can make a twin send several messages, each with its own stable id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnPart {
    /// The answer of a turn.
    Answer,
    /// An AI-to-AI protocol event (its cause names the negotiation, type and sequence).
    ProtocolEvent,
    /// "You are sending too fast", to the sender.
    RateLimitNotice,
    /// A notice to the sender of a message (pairing, refusal).
    ToSender,
    /// A pairing request, to the owner.
    ToOwner,
    /// The answer to a command.
    CommandAnswer,
    /// A message to the person a command was about (in their room).
    ToRequester,
    /// A notice to the owner in their DM (meetings, devices, undecryptable messages).
    OwnerNotice,
    /// A request of a turn's tools that could not be carried out.
    RequestProblem,
    /// A further message of an answer too long for one (its cause names the part).
    Continuation,
    /// An edit of an answer being streamed (its cause names the run and the edit).
    LiveEdit,
    /// The final edit of a streamed answer.
    FinalEdit,
    /// A notice that a media message could not be used (too large, tampered, refused).
    MediaProblem,
    /// A file sent by `send_file` (its cause names the turn's request).
    SendFile,
    /// The spoken form of an answer.
    VoiceReply,
}

impl TxnPart {
    /// The number mixed into the id. Fixed forever: a changed number would make a send
    /// repeated after an upgrade post twice.
    fn number(self) -> u32 {
        match self {
            Self::Answer | Self::ProtocolEvent => 0,
            Self::RateLimitNotice => 1,
            Self::ToSender => 2,
            Self::ToOwner => 3,
            Self::CommandAnswer => 4,
            Self::ToRequester => 5,
            Self::OwnerNotice => 7,
            Self::RequestProblem => 8,
            Self::Continuation => 9,
            Self::LiveEdit => 10,
            Self::FinalEdit => 11,
            Self::MediaProblem => 12,
            Self::SendFile => 13,
            Self::VoiceReply => 14,
        }
    }
}

/// The transaction id for the message `part` that `sender` sends for `cause` (an event id or
/// another stable key).
pub fn txn_id_for(sender: &str, cause: &str, part: TxnPart) -> OwnedTransactionId {
    let part = part.number();
    let mut hash = Sha256::new();
    hash.update(sender.as_bytes());
    hash.update([0]);
    hash.update(cause.as_bytes());
    hash.update([0]);
    hash.update(part.to_be_bytes());
    let digest = hash.finalize();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18]);
    OwnedTransactionId::from(format!("mos.{encoded}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn same_cause_same_id_other_cause_other_id() {
        let a = txn_id_for("@a_ai:x", "$ev1", TxnPart::Answer);
        assert_eq!(a, txn_id_for("@a_ai:x", "$ev1", TxnPart::Answer));
        assert_ne!(a, txn_id_for("@a_ai:x", "$ev2", TxnPart::Answer));
        assert_ne!(a, txn_id_for("@a_ai:x", "$ev1", TxnPart::RateLimitNotice));
        assert_ne!(a, txn_id_for("@b_ai:x", "$ev1", TxnPart::Answer));
        assert!(a.as_str().len() < 40);
        // Ids of earlier versions stay the same (a send repeated after an upgrade is deduplicated).
        insta::assert_snapshot!(a.as_str(), @"mos.ICxWyrODEt-JwcPefvOCcDbL");
    }
}
