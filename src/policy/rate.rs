//! Rate limits per sender and per remote server, over sliding windows, with the clock passed
//! in (no I/O, no timers).

use std::time::{Duration, Instant};

use ruma::{OwnedServerName, OwnedUserId, UserId};

use super::window::Windows;

/// How many messages are answered per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Messages one sender may send per `sender_window` (0 is treated as 1).
    pub sender_messages: u32,
    /// Window of the per-sender limit.
    pub sender_window: Duration,
    /// Messages all senders of one remote server together may send per `server_window`
    /// (0 is treated as 1).
    pub server_messages: u32,
    /// Window of the per-server limit.
    pub server_window: Duration,
}

/// Which limit a message ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The sender's own limit.
    Sender,
    /// The limit shared by every sender of the sender's (remote) server.
    Server,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limits: handle it.
    Allow,
    /// Over the limit for the first time in this episode: tell them once.
    Notify {
        /// When a message would be allowed again (if nothing else is sent meanwhile).
        retry_after: Duration,
        /// Which limit was hit.
        scope: LimitScope,
    },
    /// Still over the limit: stay silent.
    Silent,
}

/// Sliding-window rate limiter per sender and per remote server.
///
/// Only allowed messages fill the windows, so a sender who keeps writing while limited gets
/// answered again as soon as older answered messages leave the window. Windows that empty are
/// dropped, so memory follows the recent allowed traffic only.
#[derive(Debug)]
pub struct RateLimiter {
    sender_messages: u32,
    server_messages: u32,
    local_server: OwnedServerName,
    senders: Windows<OwnedUserId>,
    servers: Windows<OwnedServerName>,
}

impl RateLimiter {
    /// A limiter for a service whose own users live on `local_server`.
    pub fn new(limits: RateLimits, local_server: OwnedServerName) -> Self {
        Self {
            sender_messages: limits.sender_messages.max(1),
            server_messages: limits.server_messages.max(1),
            local_server,
            senders: Windows::new(limits.sender_window),
            servers: Windows::new(limits.server_window),
        }
    }

    /// Counts one message from `sender` at `now`. Server limits apply only to senders of other
    /// servers. After a limited episode, the first allowed message ends it, so a later excess
    /// notifies again (once).
    pub fn check(&mut self, sender: &UserId, now: Instant) -> Verdict {
        self.senders.sweep(now);
        self.servers.sweep(now);
        let server = sender.server_name();
        let remote = server != self.local_server;

        let sender_window = self.senders.window();
        if let Some(w) = self.senders.get_pruned(sender, now)
            && w.is_full(self.sender_messages)
        {
            return episode(w, now, sender_window, LimitScope::Sender);
        }
        if remote {
            let server_window = self.servers.window();
            if let Some(w) = self.servers.get_pruned(server, now)
                && w.is_full(self.server_messages)
            {
                return episode(w, now, server_window, LimitScope::Server);
            }
            self.servers.record(server.to_owned(), now);
        }
        self.senders.record(sender.to_owned(), now);
        Verdict::Allow
    }

    /// How many senders and servers currently hold a window (for tests of the memory bound).
    #[cfg(test)]
    pub(super) fn tracked(&self) -> (usize, usize) {
        (self.senders.len(), self.servers.len())
    }
}

/// [`Verdict::Notify`] the first time in an episode, [`Verdict::Silent`] after.
fn episode(
    w: &mut super::window::Window,
    now: Instant,
    window: Duration,
    scope: LimitScope,
) -> Verdict {
    if w.notified {
        Verdict::Silent
    } else {
        w.notified = true;
        Verdict::Notify {
            retry_after: w.retry_after(now, window),
            scope,
        }
    }
}
