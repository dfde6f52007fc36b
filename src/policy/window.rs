//! A sliding window of timestamps, shared by the rate limiter and the bot-turn bound.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Timestamps of the events allowed within the last `window`, and whether the current
/// over-the-limit episode has been announced.
#[derive(Debug, Default)]
pub(super) struct Window {
    times: VecDeque<Instant>,
    /// Set when the key was told it is over the limit; cleared by the next allowed event.
    pub(super) notified: bool,
}

impl Window {
    /// Forgets timestamps that are `window` or more before `now`.
    pub(super) fn prune(&mut self, now: Instant, window: Duration) {
        while let Some(&oldest) = self.times.front() {
            if now.saturating_duration_since(oldest) >= window {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether `limit` events already happened within the window (after [`Window::prune`]).
    pub(super) fn is_full(&self, limit: u32) -> bool {
        self.times.len() >= usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Records an allowed event, which also ends an over-the-limit episode.
    pub(super) fn record(&mut self, now: Instant) {
        self.times.push_back(now);
        self.notified = false;
    }

    /// How long until the oldest event leaves the window.
    pub(super) fn retry_after(&self, now: Instant, window: Duration) -> Duration {
        self.times
            .front()
            .and_then(|oldest| oldest.checked_add(window))
            .map_or(window, |free| free.saturating_duration_since(now))
    }

    fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Windows by key, with the empty ones dropped so memory follows recent activity only.
#[derive(Debug)]
pub(super) struct Windows<K> {
    map: HashMap<K, Window>,
    window: Duration,
    last_sweep: Option<Instant>,
}

impl<K: Eq + Hash> Windows<K> {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            map: HashMap::new(),
            window,
            last_sweep: None,
        }
    }

    /// The window length.
    pub(super) fn window(&self) -> Duration {
        self.window
    }

    /// Drops every window that has emptied, at most once per window length (so the cost is
    /// spread thin); an emptied window holds nothing worth keeping, since the next event of its
    /// key is allowed anyway and ends any episode.
    pub(super) fn sweep(&mut self, now: Instant) {
        let due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= self.window);
        if !due {
            return;
        }
        self.last_sweep = Some(now);
        let window = self.window;
        self.map.retain(|_, w| {
            w.prune(now, window);
            !w.is_empty()
        });
    }

    /// The key's window pruned to `now`, if it has one.
    pub(super) fn get_pruned<Q>(&mut self, key: &Q, now: Instant) -> Option<&mut Window>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let window = self.window;
        let w = self.map.get_mut(key)?;
        w.prune(now, window);
        Some(w)
    }

    /// Records an allowed event of `key`.
    pub(super) fn record(&mut self, key: K, now: Instant) {
        self.map.entry(key).or_default().record(now);
    }

    /// How many keys hold a window (for tests of the memory bound).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
