use ruma::ServerName;

use super::super::{ACCESS_FILE, AccessFile, AccessPolicy, PolicyError};
use super::{new_home, owner, uid};
use crate::config::AccessConfig;

fn policy(file: AccessFile) -> AccessPolicy {
    AccessPolicy::new(&owner(), file, &AccessConfig::default()).unwrap()
}

fn list(globs: &[&str]) -> Vec<String> {
    globs.iter().map(|g| (*g).to_owned()).collect()
}

fn server(name: &str) -> &ServerName {
    <&ServerName>::try_from(name).unwrap()
}

fn invalid_path(err: PolicyError) -> (String, String) {
    match err {
        PolicyError::Invalid { path, message } => (path, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn default_policy_is_owner_only_with_pairing_on() {
    let p = policy(AccessFile::default());
    assert!(p.may_dm(&owner()));
    assert!(p.may_invite(&owner()));
    assert!(p.may_use_in_rooms(&owner()));
    let bob = uid("@bob:x.org");
    assert!(!p.may_dm(&bob));
    assert!(!p.may_invite(&bob));
    assert!(!p.may_use_in_rooms(&bob));
    assert!(!p.is_bot(&bob));
    assert!(!p.is_blocked(&bob));
    assert!(p.pairing());
    assert_eq!(p.owner(), owner());
}

#[test]
fn globs_match_the_full_mxid_including_the_server() {
    let p = policy(AccessFile {
        dm: list(&["@bob:x.org", "@*:friends.org"]),
        invite: list(&["@bob:x.org"]),
        rooms: list(&["@*:x.org"]),
        ..AccessFile::default()
    });
    assert!(p.may_dm(&uid("@bob:x.org")));
    assert!(!p.may_dm(&uid("@carol:x.org")));
    assert!(p.may_dm(&uid("@anyone:friends.org")));
    assert!(!p.may_dm(&uid("@anyone:evil.friends.org")));
    assert!(!p.may_dm(&uid("@anyone:notfriends.org")));
    assert!(!p.may_dm(&uid("@bob:x.org.evil")));
    assert!(p.may_invite(&uid("@bob:x.org")));
    assert!(!p.may_invite(&uid("@anyone:friends.org")));
    assert!(p.may_use_in_rooms(&uid("@carol:x.org")));
    assert!(!p.may_use_in_rooms(&uid("@carol:friends.org")));
}

#[test]
fn star_lets_everyone_in() {
    let p = policy(AccessFile {
        dm: list(&["*"]),
        ..AccessFile::default()
    });
    assert!(p.may_dm(&uid("@who:ever.example")));
}

#[test]
fn blocked_wins_over_every_list_but_never_blocks_the_owner() {
    let p = policy(AccessFile {
        dm: list(&["*"]),
        invite: list(&["*"]),
        rooms: list(&["*"]),
        blocked: list(&["@spam:x.org", "@*:spam.example", "@alice:x.org"]),
        ..AccessFile::default()
    });
    for spammer in ["@spam:x.org", "@a:spam.example"] {
        let spammer = uid(spammer);
        assert!(p.is_blocked(&spammer));
        assert!(!p.may_dm(&spammer));
        assert!(!p.may_invite(&spammer));
        assert!(!p.may_use_in_rooms(&spammer));
    }
    assert!(p.may_dm(&uid("@bob:x.org")));
    assert!(!p.is_blocked(&owner()));
    assert!(p.may_dm(&owner()));
    assert!(p.may_invite(&owner()));
}

#[test]
fn bots_are_matched_but_the_owner_never_is_one() {
    let p = policy(AccessFile {
        bots: list(&["@*bot:x.org", "@alice:x.org"]),
        ..AccessFile::default()
    });
    assert!(p.is_bot(&uid("@weatherbot:x.org")));
    assert!(!p.is_bot(&uid("@bob:x.org")));
    assert!(!p.is_bot(&owner()));
}

#[test]
fn config_defaults_add_to_the_file_and_pairing_falls_back_to_the_config() {
    let defaults = AccessConfig {
        dm: list(&["@*:corp.example"]),
        bots: list(&["@ci:x.org"]),
        pairing: false,
        ..AccessConfig::default()
    };
    let file = AccessFile {
        dm: list(&["@bob:x.org"]),
        ..AccessFile::default()
    };
    let p = AccessPolicy::new(&owner(), file.clone(), &defaults).unwrap();
    assert!(p.may_dm(&uid("@bob:x.org")));
    assert!(p.may_dm(&uid("@carol:corp.example")));
    assert!(p.is_bot(&uid("@ci:x.org")));
    assert!(!p.pairing());
    assert_eq!(
        p.file(),
        &file,
        "file() is the owner's file, without defaults"
    );

    let file = AccessFile {
        pairing: Some(true),
        ..AccessFile::default()
    };
    assert!(
        AccessPolicy::new(&owner(), file, &defaults)
            .unwrap()
            .pairing()
    );
}

#[test]
fn federation_globs_match_server_names_and_the_own_server_always_passes() {
    let own_only = policy(AccessFile::default());
    assert!(own_only.federation_allows(server("x.org")));
    assert!(!own_only.federation_allows(server("friends.org")));

    let p = policy(AccessFile {
        federation: list(&["friends.org", "*.partners.example"]),
        ..AccessFile::default()
    });
    assert!(p.federation_allows(server("x.org")));
    assert!(p.federation_allows(server("friends.org")));
    assert!(
        p.federation_allows(server("FRIENDS.org")),
        "DNS names ignore case"
    );
    assert!(!p.federation_allows(server("evil.org")));
    assert!(p.federation_allows(server("a.partners.example")));
    assert!(!p.federation_allows(server("partners.example")));

    let all = policy(AccessFile {
        federation: list(&["*"]),
        ..AccessFile::default()
    });
    assert!(all.federation_allows(server("anything.example:8448")));
}

#[test]
fn bad_globs_are_errors_naming_the_file_and_list() {
    for (file, list_name) in [
        (
            AccessFile {
                dm: list(&["@[bob:x.org"]),
                ..AccessFile::default()
            },
            "dm",
        ),
        (
            AccessFile {
                blocked: list(&["bob"]),
                ..AccessFile::default()
            },
            "blocked",
        ),
        (
            AccessFile {
                federation: list(&["@bob:x.org"]),
                ..AccessFile::default()
            },
            "federation",
        ),
        (
            AccessFile {
                invite: list(&[""]),
                ..AccessFile::default()
            },
            "invite",
        ),
    ] {
        let err = AccessPolicy::new(&owner(), file, &AccessConfig::default()).unwrap_err();
        let (path, message) = invalid_path(err);
        assert_eq!(path, ACCESS_FILE);
        assert!(message.starts_with(list_name), "{message}");
    }
}

#[test]
fn bad_config_default_names_the_config_key() {
    let defaults = AccessConfig {
        rooms: list(&["nobody"]),
        ..AccessConfig::default()
    };
    let err = AccessPolicy::new(&owner(), AccessFile::default(), &defaults).unwrap_err();
    assert!(err.to_string().contains("access.rooms"), "{err}");
}

#[test]
fn owner_only_lets_nobody_else_in_and_pairing_is_off() {
    let p = AccessPolicy::owner_only(&owner());
    let bob = uid("@bob:x.org");
    assert!(p.may_dm(&owner()));
    assert!(!p.may_dm(&bob));
    assert!(!p.may_invite(&bob));
    assert!(!p.may_use_in_rooms(&bob));
    assert!(!p.pairing());
    assert!(p.federation_allows(server("x.org")));
    assert!(!p.federation_allows(server("friends.org")));
    assert_eq!(p.file(), &AccessFile::default());
}

#[test]
fn approve_and_deny_round_trip_through_toml() {
    let bob = uid("@bob:x.org");
    let mut file = AccessFile {
        dm: list(&["@*:friends.org"]),
        ..AccessFile::default()
    };
    file.deny(&bob);
    file.deny(&bob);
    assert_eq!(file.blocked, list(&["@bob:x.org"]));
    file.approve(&bob);
    file.approve(&bob);
    assert_eq!(file.dm, list(&["@*:friends.org", "@bob:x.org"]));
    assert!(file.blocked.is_empty());
    file.deny(&bob);
    assert_eq!(file.dm, list(&["@*:friends.org"]));
    assert_eq!(file.blocked, list(&["@bob:x.org"]));

    for pairing in [None, Some(false), Some(true)] {
        file.pairing = pairing;
        let text = file.to_toml();
        assert!(text.starts_with("# "), "{text}");
        assert_eq!(
            AccessFile::parse(&text, ACCESS_FILE).unwrap(),
            file,
            "{text}"
        );
    }
    let empty = AccessFile::default();
    assert_eq!(
        AccessFile::parse(&empty.to_toml(), ACCESS_FILE).unwrap(),
        empty
    );
}

#[test]
fn missing_keys_are_empty_and_unknown_keys_are_refused() {
    let file = AccessFile::parse("dm = [\"@bob:x.org\"]\n", ACCESS_FILE).unwrap();
    assert_eq!(file.dm, list(&["@bob:x.org"]));
    assert!(file.invite.is_empty());
    assert_eq!(file.pairing, None);

    let err = AccessFile::parse("dms = []\n", ACCESS_FILE).unwrap_err();
    let (path, message) = invalid_path(err);
    assert_eq!(path, ACCESS_FILE);
    assert!(message.contains("dms"), "{message}");
}

#[test]
fn template_access_file_is_owner_only_and_explains_itself() {
    let (_dir, home) = new_home();
    let text = home.read_to_string(ACCESS_FILE).unwrap();
    let file = AccessFile::parse(&text, ACCESS_FILE).unwrap();
    assert_eq!(
        file,
        AccessFile {
            pairing: Some(true),
            ..AccessFile::default()
        }
    );
    // The template's comment header is the one `to_toml` writes, so saving keeps it.
    let header: String = AccessFile::default()
        .to_toml()
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.starts_with(&header), "{text}");

    let p = AccessPolicy::load(&home, &owner(), &AccessConfig::default()).unwrap();
    assert!(!p.may_dm(&uid("@bob:x.org")));
    assert!(p.pairing());
}

#[test]
fn load_without_a_file_uses_the_defaults() {
    let (_dir, home) = new_home();
    std::fs::remove_file(home.root().join(ACCESS_FILE)).unwrap();
    let defaults = AccessConfig {
        dm: list(&["@*:x.org"]),
        ..AccessConfig::default()
    };
    let p = AccessPolicy::load(&home, &owner(), &defaults).unwrap();
    assert!(p.may_dm(&uid("@bob:x.org")));
    assert_eq!(p.file(), &AccessFile::default());
}

#[test]
fn broken_file_is_an_error_naming_the_file() {
    let (_dir, home) = new_home();
    for (text, needle) in [
        ("dm = [\"@bob:x.org\"\n", ""),
        ("dm = \"@bob:x.org\"\n", "dm"),
        ("dm = [\"bob\"]\n", "bob"),
        ("federation = [\"@*:x.org\"]\n", "federation"),
    ] {
        home.write_atomic(ACCESS_FILE, text.as_bytes()).unwrap();
        let err = AccessPolicy::load(&home, &owner(), &AccessConfig::default()).unwrap_err();
        assert!(err.to_string().starts_with(ACCESS_FILE), "{err}");
        let (path, message) = invalid_path(err);
        assert_eq!(path, ACCESS_FILE);
        assert!(message.contains(needle), "{text}: {message}");
    }
    home.write_atomic(ACCESS_FILE, b"\0\x01binary").unwrap();
    let err = AccessPolicy::load(&home, &owner(), &AccessConfig::default()).unwrap_err();
    assert!(err.to_string().contains(ACCESS_FILE), "{err}");
}

#[test]
fn save_then_load_round_trips_without_committing() {
    let (_dir, home) = new_home();
    let mut file = AccessFile::default();
    file.approve(&uid("@bob:x.org"));
    file.federation.push("friends.org".into());
    file.pairing = Some(false);
    file.save(&home).unwrap();
    let p = AccessPolicy::load(&home, &owner(), &AccessConfig::default()).unwrap();
    assert_eq!(p.file(), &file);
    assert!(p.may_dm(&uid("@bob:x.org")));
    assert!(!p.pairing());
    // The caller commits: the save left the change uncommitted.
    assert!(home.commit("policy").unwrap().is_some());
}
