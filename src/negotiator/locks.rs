//! One lock per twin: a twin's negotiation steps (events, owner answers and ticks come from
//! different rooms' queues) run one at a time, while other twins' steps go on.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use ruma::{OwnedUserId, UserId};
use tokio::sync::OwnedMutexGuard;

/// The locks, made on first use (one small entry per twin that ever negotiated).
#[derive(Debug, Default)]
pub(crate) struct TwinLocks {
    locks: Mutex<HashMap<OwnedUserId, Arc<tokio::sync::Mutex<()>>>>,
}

impl TwinLocks {
    /// Waits for `twin`'s lock.
    pub(crate) async fn lock(&self, twin: &UserId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(locks.entry(twin.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use ruma::user_id;

    use super::*;

    #[tokio::test]
    async fn a_twin_waits_for_itself_but_not_for_others() {
        let locks = TwinLocks::default();
        let alice = locks.lock(user_id!("@alice_ai:x")).await;
        let bob = tokio::time::timeout(Duration::from_secs(1), locks.lock(user_id!("@bob_ai:x")));
        assert!(bob.await.is_ok(), "another twin is not held up");
        let again = tokio::time::timeout(
            Duration::from_millis(100),
            locks.lock(user_id!("@alice_ai:x")),
        );
        assert!(again.await.is_err(), "the same twin waits");
        drop(alice);
        let again =
            tokio::time::timeout(Duration::from_secs(1), locks.lock(user_id!("@alice_ai:x")));
        assert!(again.await.is_ok());
    }
}
