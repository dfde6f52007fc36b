use std::time::{Duration, Instant};

use super::super::BotTurns;
use super::rid;

#[test]
fn bot_turns_are_bounded_per_room_and_window() {
    let window = Duration::from_secs(600);
    let mut turns = BotTurns::new(2, window);
    let room = rid("!a:x.org");
    let other = rid("!b:x.org");
    let t0 = Instant::now();
    assert!(turns.allow(&room, t0));
    assert!(turns.allow(&room, t0 + Duration::from_secs(1)));
    assert!(!turns.allow(&room, t0 + Duration::from_secs(2)));
    assert!(!turns.allow(&room, t0 + Duration::from_secs(599)));
    assert!(
        turns.allow(&other, t0 + Duration::from_secs(2)),
        "rooms are separate"
    );
    // The first turn leaves the window.
    assert!(turns.allow(&room, t0 + window));
    assert!(!turns.allow(&room, t0 + window));
    // Refused turns are not recorded, so the window drains on time.
    assert!(turns.allow(&room, t0 + window + Duration::from_secs(1)));
}

#[test]
fn zero_turns_never_allows_and_windows_are_dropped() {
    let mut none = BotTurns::new(0, Duration::from_secs(60));
    assert!(!none.allow(&rid("!a:x.org"), Instant::now()));

    let mut turns = BotTurns::new(3, Duration::from_secs(60));
    let t0 = Instant::now();
    for i in 0..100 {
        assert!(turns.allow(&rid(&format!("!r{i}:x.org")), t0));
    }
    assert_eq!(turns.tracked(), 100);
    assert!(turns.allow(&rid("!a:x.org"), t0 + Duration::from_secs(60)));
    assert_eq!(turns.tracked(), 1);
}
