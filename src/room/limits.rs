//! The stateful limits of room sessions: rate limits per sender and per remote server, the
//! bound on bot-to-bot turns, and "tell them only once" for refusals.

use std::{
    collections::HashSet,
    sync::Mutex,
    time::{Duration, Instant},
};

use ruma::{RoomId, UserId};

use crate::{
    config::LimitsConfig,
    policy::{BotTurns, NoticeVerdict, OwnerNotices, RateLimiter, Verdict},
};

/// Most refusals remembered (then the memory starts over: a second notice is harmless).
const MAX_REMEMBERED_REFUSALS: usize = 10_000;

/// Shared limit state of all rooms.
/// The stateful limits, shared by every room.
#[derive(Debug)]
pub struct Limits {
    rate: Mutex<RateLimiter>,
    bots: Mutex<BotTurns>,
    owner_notices: Mutex<OwnerNotices>,
    refused: Mutex<HashSet<(String, String, String)>>,
}

impl Limits {
    /// Limits configured by `[limits]`; `local_server` is the homeserver's own name.
    pub fn new(config: &LimitsConfig, local_server: &str) -> Self {
        let server = ruma::OwnedServerName::try_from(local_server)
            .unwrap_or_else(|_| ruma::owned_server_name!("localhost"));
        Self {
            rate: Mutex::new(RateLimiter::new(config.rate_limits(), server)),
            bots: Mutex::new(BotTurns::new(
                config.bot_turns,
                Duration::from_secs(config.bot_window_secs),
            )),
            owner_notices: Mutex::new(OwnerNotices::new(
                config.owner_notices,
                Duration::from_secs(config.owner_notice_window_secs),
            )),
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `twin` may tell its owner about one more stranger now.
    pub(crate) fn owner_notice(&self, twin: &UserId) -> NoticeVerdict {
        self.owner_notices
            .lock()
            .map(|mut notices| notices.check(twin, Instant::now()))
            .unwrap_or(NoticeVerdict::Quiet)
    }

    /// Counts a message from `sender` that asks for an answer.
    pub(crate) fn check_rate(&self, sender: &UserId) -> Verdict {
        match self.rate.lock() {
            Ok(mut rate) => rate.check(sender, Instant::now()),
            // A poisoned lock means a panic elsewhere; fail open for this one message rather
            // than silencing everyone.
            Err(_) => Verdict::Allow,
        }
    }

    /// Whether one more bot-triggered turn may run in `room`.
    pub(crate) fn allow_bot_turn(&self, room: &RoomId) -> bool {
        self.bots
            .lock()
            .map(|mut bots| bots.allow(room, Instant::now()))
            .unwrap_or(false)
    }

    /// `true` the first time `sender` is refused by `twin` in `room`.
    pub(crate) fn first_refusal(&self, twin: &UserId, room: &RoomId, sender: &UserId) -> bool {
        let Ok(mut refused) = self.refused.lock() else {
            return false;
        };
        if refused.len() >= MAX_REMEMBERED_REFUSALS {
            refused.clear();
        }
        refused.insert((twin.to_string(), room.to_string(), sender.to_string()))
    }
}
