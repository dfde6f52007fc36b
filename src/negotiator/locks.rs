//! One lock per twin: a twin's negotiation steps (events, owner answers and ticks come from
//! different rooms' queues) run one at a time, while other twins' steps go on.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use ruma::{OwnedUserId, UserId};
use tokio::sync::OwnedMutexGuard;

/// Map size from which unused locks are dropped before a new one is made.
const PRUNE_AT: usize = 256;

/// The locks, made on first use and dropped when unused (once there are many).
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
            // Locks nobody holds or waits for go, so thousands of idle twins leave none behind.
            if locks.len() >= PRUNE_AT {
                locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
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

    #[tokio::test]
    async fn unused_locks_are_dropped_but_held_ones_stay() {
        let locks = TwinLocks::default();
        let held = locks.lock(user_id!("@held_ai:x")).await;
        for n in 0..1000 {
            let twin = ruma::UserId::parse(format!("@t{n}_ai:x")).unwrap();
            drop(locks.lock(&twin).await);
        }
        let size = locks.locks.lock().unwrap().len();
        assert!(size <= PRUNE_AT, "{size} locks kept");
        let again = tokio::time::timeout(
            Duration::from_millis(100),
            locks.lock(user_id!("@held_ai:x")),
        );
        assert!(again.await.is_err(), "a held lock survived the pruning");
        drop(held);
    }
}
