//! A bound on bot-to-bot conversations: at most so many bot-triggered turns per room and
//! window, so two twins (or a twin and a bot) cannot talk to each other forever.

use std::time::{Duration, Instant};

use ruma::{OwnedRoomId, RoomId};

use super::window::Windows;

/// Bot-triggered turns per room over a sliding window.
#[derive(Debug)]
pub struct BotTurns {
    max_turns: u32,
    rooms: Windows<OwnedRoomId>,
}

impl BotTurns {
    /// At most `max_turns` bot-triggered turns per room within any `window` (0: none at all).
    pub fn new(max_turns: u32, window: Duration) -> Self {
        Self {
            max_turns,
            rooms: Windows::new(window),
        }
    }

    /// Whether a turn triggered by a bot may run in `room` at `now`; records it when allowed.
    pub fn allow(&mut self, room: &RoomId, now: Instant) -> bool {
        if self.max_turns == 0 {
            return false;
        }
        self.rooms.sweep(now);
        if let Some(w) = self.rooms.get_pruned(room, now)
            && w.is_full(self.max_turns)
        {
            return false;
        }
        self.rooms.record(room.to_owned(), now);
        true
    }

    /// How many rooms currently hold a window (for tests of the memory bound).
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.rooms.len()
    }
}
