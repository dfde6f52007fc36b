//! A bound on protocol events per peer: a flood from one twin is dropped, not answered, and
//! costs neither the calendar nor the database.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use ruma::{OwnedUserId, UserId};

/// Protocol events one peer may send one twin per [`WINDOW`].
pub(crate) const MAX_EVENTS_PER_WINDOW: u32 = 30;
/// The window of [`MAX_EVENTS_PER_WINDOW`].
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Pairs tracked before old windows are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
    warned: bool,
}

/// Counts protocol events per `(twin, peer)` in fixed windows.
#[derive(Debug, Default)]
pub(crate) struct ProtocolRate {
    windows: Mutex<HashMap<(OwnedUserId, OwnedUserId), Window>>,
}

impl ProtocolRate {
    /// Whether `peer` may send `twin` one more protocol event now.
    pub(crate) fn allow(&self, twin: &UserId, peer: &UserId) -> bool {
        self.allow_at(twin, peer, Instant::now())
    }

    fn allow_at(&self, twin: &UserId, peer: &UserId, now: Instant) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows
            .entry((twin.to_owned(), peer.to_owned()))
            .or_insert(Window {
                started: now,
                count: 0,
                warned: false,
            });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                count: 0,
                warned: false,
            };
        }
        window.count += 1;
        if window.count <= MAX_EVENTS_PER_WINDOW {
            return true;
        }
        if !window.warned {
            window.warned = true;
            tracing::warn!(%twin, %peer, "too many protocol events from one peer; dropping them for a while");
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_per_peer_and_the_window_reopens() {
        let rate = ProtocolRate::default();
        let (twin, eve, bob) = (
            ruma::user_id!("@a_ai:x"),
            ruma::user_id!("@eve_ai:y"),
            ruma::user_id!("@bob_ai:z"),
        );
        let now = Instant::now();
        let allowed = (0..100).filter(|_| rate.allow_at(twin, eve, now)).count();
        assert_eq!(allowed, MAX_EVENTS_PER_WINDOW as usize);
        assert!(
            rate.allow_at(twin, bob, now),
            "another peer is not affected"
        );
        assert!(
            rate.allow_at(twin, eve, now + WINDOW),
            "the next window opens"
        );
    }
}
