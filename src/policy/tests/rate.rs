use std::time::{Duration, Instant};

use ruma::OwnedServerName;

use super::super::{LimitScope, RateLimiter, RateLimits, Verdict};
use super::uid;

const MIN: Duration = Duration::from_secs(60);

fn limiter(sender_messages: u32, server_messages: u32) -> RateLimiter {
    let local = OwnedServerName::try_from("x.org").unwrap();
    RateLimiter::new(
        RateLimits {
            sender_messages,
            sender_window: MIN,
            server_messages,
            server_window: MIN,
        },
        local,
    )
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn notifies_once_then_stays_silent_then_recovers() {
    let mut rl = limiter(2, 100);
    let bob = uid("@bob:x.org");
    let t0 = Instant::now();
    assert_eq!(rl.check(&bob, t0), Verdict::Allow);
    assert_eq!(rl.check(&bob, t0 + secs(10)), Verdict::Allow);
    assert_eq!(
        rl.check(&bob, t0 + secs(20)),
        Verdict::Notify {
            retry_after: secs(40),
            scope: LimitScope::Sender
        }
    );
    assert_eq!(rl.check(&bob, t0 + secs(30)), Verdict::Silent);
    assert_eq!(rl.check(&bob, t0 + secs(59)), Verdict::Silent);
    // Others are not affected.
    assert_eq!(
        rl.check(&uid("@carol:x.org"), t0 + secs(30)),
        Verdict::Allow
    );

    // The first message leaves the window at t0+60: one slot frees, which ends the episode.
    assert_eq!(rl.check(&bob, t0 + secs(60)), Verdict::Allow);
    // Over again: a new episode, told once again.
    assert_eq!(
        rl.check(&bob, t0 + secs(61)),
        Verdict::Notify {
            retry_after: secs(9),
            scope: LimitScope::Sender
        }
    );
    assert_eq!(rl.check(&bob, t0 + secs(62)), Verdict::Silent);
    // Long quiet: everything is allowed again.
    assert_eq!(rl.check(&bob, t0 + secs(500)), Verdict::Allow);
    assert_eq!(rl.check(&bob, t0 + secs(500)), Verdict::Allow);
}

#[test]
fn server_limit_applies_only_to_remote_senders() {
    let mut rl = limiter(100, 2);
    let t0 = Instant::now();
    for i in 0..10 {
        let local = uid(&format!("@user{i}:x.org"));
        assert_eq!(
            rl.check(&local, t0),
            Verdict::Allow,
            "local senders have no server limit"
        );
    }
    assert_eq!(rl.check(&uid("@a:remote.example"), t0), Verdict::Allow);
    assert_eq!(
        rl.check(&uid("@b:remote.example"), t0 + secs(1)),
        Verdict::Allow
    );
    assert_eq!(
        rl.check(&uid("@c:remote.example"), t0 + secs(2)),
        Verdict::Notify {
            retry_after: secs(58),
            scope: LimitScope::Server
        }
    );
    assert_eq!(
        rl.check(&uid("@d:remote.example"), t0 + secs(3)),
        Verdict::Silent
    );
    assert_eq!(
        rl.check(&uid("@a:remote.example"), t0 + secs(4)),
        Verdict::Silent
    );
    assert_eq!(
        rl.check(&uid("@a:other.example"), t0 + secs(4)),
        Verdict::Allow
    );
    assert_eq!(rl.check(&uid("@user0:x.org"), t0 + secs(4)), Verdict::Allow);
    // The server's window drains.
    assert_eq!(
        rl.check(&uid("@c:remote.example"), t0 + secs(60)),
        Verdict::Allow
    );
}

#[test]
fn sender_limit_is_reported_before_server_limit() {
    let mut rl = limiter(1, 1);
    let t0 = Instant::now();
    let a = uid("@a:remote.example");
    assert_eq!(rl.check(&a, t0), Verdict::Allow);
    assert!(matches!(
        rl.check(&a, t0),
        Verdict::Notify {
            scope: LimitScope::Sender,
            ..
        }
    ));
    assert!(matches!(
        rl.check(&uid("@b:remote.example"), t0),
        Verdict::Notify {
            scope: LimitScope::Server,
            ..
        }
    ));
}

#[test]
fn zero_limit_is_treated_as_one() {
    let mut rl = limiter(0, 0);
    let t0 = Instant::now();
    let bob = uid("@bob:x.org");
    assert_eq!(rl.check(&bob, t0), Verdict::Allow);
    assert!(matches!(rl.check(&bob, t0), Verdict::Notify { .. }));
}

#[test]
fn memory_follows_recent_traffic_only() {
    let mut rl = limiter(5, 5);
    let t0 = Instant::now();
    for i in 0..500 {
        rl.check(&uid(&format!("@u{i}:s{i}.example")), t0);
    }
    assert_eq!(rl.tracked(), (500, 500));
    rl.check(&uid("@bob:x.org"), t0 + secs(61));
    assert_eq!(rl.tracked(), (1, 0));
}

#[test]
fn clock_going_backwards_does_not_panic() {
    let mut rl = limiter(1, 1);
    let t0 = Instant::now() + secs(100);
    let bob = uid("@bob:remote.example");
    assert_eq!(rl.check(&bob, t0), Verdict::Allow);
    assert!(matches!(
        rl.check(&bob, t0 - secs(50)),
        Verdict::Notify { .. }
    ));
}
