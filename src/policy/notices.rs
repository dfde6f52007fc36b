//! A bound on the notices strangers can make a twin send its owner (pairing requests): at most
//! so many per twin and window, so that a crowd of new accounts cannot flood the owner's DM.

use std::time::{Duration, Instant};

use ruma::{OwnedUserId, UserId};

use super::window::Windows;

/// What becomes of one more notice to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeVerdict {
    /// Send it.
    Send,
    /// Over the bound: say once that more are waiting (this is the first one over it).
    Summarize,
    /// Over the bound, already said: keep quiet.
    Quiet,
}

/// Notices to owners per twin over a sliding window.
#[derive(Debug)]
pub struct OwnerNotices {
    max: u32,
    twins: Windows<OwnedUserId>,
}

impl OwnerNotices {
    /// At most `max` notices per twin within any `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            twins: Windows::new(window),
        }
    }

    /// Whether `twin` may send its owner one more notice at `now`; records it when so.
    pub fn check(&mut self, twin: &UserId, now: Instant) -> NoticeVerdict {
        self.twins.sweep(now);
        if let Some(w) = self.twins.get_pruned(twin, now)
            && w.is_full(self.max)
        {
            if w.notified {
                return NoticeVerdict::Quiet;
            }
            w.notified = true;
            return NoticeVerdict::Summarize;
        }
        self.twins.record(twin.to_owned(), now);
        NoticeVerdict::Send
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_crowd_of_requests_gets_the_owner_a_few_notices_and_one_summary() {
        let mut notices = OwnerNotices::new(3, Duration::from_secs(60));
        let twin = ruma::user_id!("@a_ai:x");
        let other = ruma::user_id!("@b_ai:x");
        let t0 = Instant::now();
        let verdicts: Vec<NoticeVerdict> = (0..6).map(|_| notices.check(twin, t0)).collect();
        assert_eq!(
            verdicts,
            [
                NoticeVerdict::Send,
                NoticeVerdict::Send,
                NoticeVerdict::Send,
                NoticeVerdict::Summarize,
                NoticeVerdict::Quiet,
                NoticeVerdict::Quiet
            ]
        );
        assert_eq!(notices.check(other, t0), NoticeVerdict::Send);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(notices.check(twin, later), NoticeVerdict::Send);
    }
}
