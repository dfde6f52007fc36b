use super::super::{AccessFile, AccessPolicy, PolicyError};
use super::{owner, uid};
use crate::config::AccessConfig;

fn usage_of(result: Result<String, PolicyError>) -> String {
    match result {
        Err(PolicyError::Command(text)) => {
            assert!(text.contains("Usage"), "{text}");
            text
        }
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn add_and_remove_globs_in_every_list() {
    let mut file = AccessFile::default();
    for list in ["dm", "invite", "rooms", "bots", "blocked"] {
        let said = file
            .apply_command(&[list, "add", "@bob:x.org", "@*:friends.org"])
            .unwrap();
        assert!(
            said.starts_with("Added `@bob:x.org`, `@*:friends.org`"),
            "{said}"
        );
    }
    let said = file
        .apply_command(&["federation", "add", "friends.org", "*"])
        .unwrap();
    assert!(said.contains("`friends.org`"), "{said}");
    assert_eq!(file.dm, ["@bob:x.org", "@*:friends.org"]);
    assert_eq!(file.invite, file.dm);
    assert_eq!(file.rooms, file.dm);
    assert_eq!(file.bots, file.dm);
    assert_eq!(file.blocked, file.dm);
    assert_eq!(file.federation, ["friends.org", "*"]);

    let said = file.apply_command(&["dm", "add", "@bob:x.org"]).unwrap();
    assert!(said.contains("Already in"), "{said}");
    assert_eq!(file.dm.len(), 2);

    let said = file
        .apply_command(&["dm", "remove", "@bob:x.org", "@nobody:x.org"])
        .unwrap();
    assert!(said.contains("Removed `@bob:x.org`"), "{said}");
    assert!(said.contains("Not in"), "{said}");
    assert_eq!(file.dm, ["@*:friends.org"]);
    file.apply_command(&["federation", "rm", "*"]).unwrap();
    assert_eq!(file.federation, ["friends.org"]);
}

#[test]
fn adding_someone_still_blocked_says_so() {
    let mut file = AccessFile::default();
    file.deny(&uid("@bob:x.org"));
    let said = file.apply_command(&["dm", "add", "@bob:x.org"]).unwrap();
    assert!(said.contains("Still blocked"), "{said}");
}

#[test]
fn pairing_on_off_default() {
    let mut file = AccessFile::default();
    file.apply_command(&["pairing", "off"]).unwrap();
    assert_eq!(file.pairing, Some(false));
    file.apply_command(&["pairing", "on"]).unwrap();
    assert_eq!(file.pairing, Some(true));
    file.apply_command(&["pairing", "default"]).unwrap();
    assert_eq!(file.pairing, None);
}

#[test]
fn bad_commands_get_usage_and_change_nothing() {
    let mut file = AccessFile {
        dm: vec!["@bob:x.org".into()],
        ..AccessFile::default()
    };
    let before = file.clone();
    for words in [
        &[][..],
        &["dm"],
        &["dm", "add"],
        &["dm", "frobnicate", "@bob:x.org"],
        &["dm", "add", "@carol:x.org", "carol"],
        &["dm", "add", "@[carol:x.org"],
        &["federation", "add", "@bob:x.org"],
        &["federation", "add", "friends.org", "bad name"],
        &["pairing"],
        &["pairing", "maybe"],
        &["pairing", "on", "off"],
        &["owners", "add", "@bob:x.org"],
        &["room", "unprompted", "on"],
    ] {
        let text = usage_of(file.apply_command(words));
        assert!(!text.is_empty(), "{words:?}");
        assert_eq!(file, before, "{words:?} changed the file");
    }
    let text = usage_of(file.apply_command(&["dm", "add", "carol"]));
    assert!(text.contains("\"carol\""), "{text}");
}

#[test]
fn describe_lists_the_policy() {
    let defaults = AccessConfig {
        dm: vec!["@*:corp.example".into()],
        ..AccessConfig::default()
    };
    let file = AccessFile {
        dm: vec!["@bob:x.org".into()],
        blocked: vec!["@spam:x.org".into()],
        federation: vec!["friends.org".into()],
        pairing: Some(false),
        ..AccessFile::default()
    };
    let text = AccessPolicy::new(&owner(), file, &defaults)
        .unwrap()
        .describe();
    assert!(
        text.contains("owner and `@bob:x.org`, `@*:corp.example` (server default)"),
        "{text}"
    );
    assert!(text.contains("**Invites:** owner only"), "{text}");
    assert!(text.contains("**Blocked:** `@spam:x.org`"), "{text}");
    assert!(text.contains("`x.org` and `friends.org`"), "{text}");
    assert!(text.contains("**Pairing:** off"), "{text}");

    let text = AccessPolicy::owner_only(&owner()).describe();
    assert!(text.contains("**Direct messages:** owner only"), "{text}");
    assert!(text.contains("**Servers:** `x.org` only"), "{text}");
    assert!(text.contains("**Bots:** none"), "{text}");
}
