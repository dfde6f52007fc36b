//! Deterministic transaction ids, so that a send repeated after a crash is deduplicated by the
//! homeserver instead of posting twice.

use base64::Engine;
use ruma::OwnedTransactionId;
use sha2::{Digest, Sha256};

/// The transaction id for the `part`-th message sent in answer to `cause` (an event id) by
/// `sender`.
pub fn txn_id_for(sender: &str, cause: &str, part: u32) -> OwnedTransactionId {
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
        let a = txn_id_for("@a_ai:x", "$ev1", 0);
        assert_eq!(a, txn_id_for("@a_ai:x", "$ev1", 0));
        assert_ne!(a, txn_id_for("@a_ai:x", "$ev2", 0));
        assert_ne!(a, txn_id_for("@a_ai:x", "$ev1", 1));
        assert_ne!(a, txn_id_for("@b_ai:x", "$ev1", 0));
        assert!(a.as_str().len() < 40);
    }
}
