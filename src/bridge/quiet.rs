//! "The human is answering now": after the owner writes in a portal where the twin answers for
//! them, the twin stays quiet there for a while.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

/// Most portals remembered; the oldest entries go first.
const MAX_ENTRIES: usize = 10_000;

/// When the owner last answered in each portal, per twin (in memory: a restart forgets it).
#[derive(Debug, Default)]
pub struct QuietPortals {
    last_answer: Mutex<HashMap<(OwnedUserId, OwnedRoomId), Instant>>,
}

impl QuietPortals {
    /// The owner answered in `room` now.
    pub fn owner_answered(&self, twin: &UserId, room: &RoomId) {
        let mut map = self
            .last_answer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= MAX_ENTRIES
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert((twin.to_owned(), room.to_owned()), Instant::now());
    }

    /// Whether the owner answered in `room` less than `quiet` ago.
    pub fn is_quiet(&self, twin: &UserId, room: &RoomId, quiet: Duration) -> bool {
        self.last_answer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(twin.to_owned(), room.to_owned()))
            .is_some_and(|at| at.elapsed() < quiet)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn quiet_after_the_owner_answered_until_it_passes() {
        let quiet = QuietPortals::default();
        let (twin, room) = (ruma::user_id!("@a_ai:hs"), ruma::room_id!("!p:hs"));
        assert!(!quiet.is_quiet(twin, room, Duration::from_secs(60)));
        quiet.owner_answered(twin, room);
        assert!(quiet.is_quiet(twin, room, Duration::from_secs(60)));
        assert!(!quiet.is_quiet(twin, room, Duration::ZERO));
    }
}
