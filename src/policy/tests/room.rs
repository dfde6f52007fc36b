use super::super::{AccessFile, AccessPolicy, PolicyError, RoomSettings};
use super::{new_home, owner, rid, uid};
use crate::config::AccessConfig;

fn access(file: AccessFile) -> AccessPolicy {
    AccessPolicy::new(&owner(), file, &AccessConfig::default()).unwrap()
}

fn settings(address: &[&str]) -> RoomSettings {
    RoomSettings {
        address: address.iter().map(|a| (*a).to_owned()).collect(),
        ..RoomSettings::default()
    }
}

#[test]
fn default_is_owner_only_prompted_all_tools() {
    let s = RoomSettings::default();
    assert_eq!(s.address, ["owner"]);
    assert!(!s.unprompted);
    assert_eq!(s.tools, None);
}

#[test]
fn room_path_is_file_safe_and_distinct() {
    assert_eq!(
        RoomSettings::path_for(&rid("!abc:x.org")),
        "system/rooms/%21abc%3Ax.org.toml"
    );
    assert_eq!(
        RoomSettings::path_for(&rid("!a-b_c.d:x.org")),
        "system/rooms/%21a-b_c.d%3Ax.org.toml"
    );
    assert_ne!(
        RoomSettings::path_for(&rid("!a%3A:x.org")),
        RoomSettings::path_for(&rid("!a::x.org"))
    );
    let long = format!("!{}:x.org", "a".repeat(300));
    let path = RoomSettings::path_for(&rid(&long));
    assert!(path.len() < 250, "{path}");
    assert!(
        path.starts_with("system/rooms/") && path.ends_with(".toml"),
        "{path}"
    );
    assert!(!path["system/rooms/".len()..].contains('/'), "{path}");
}

#[test]
fn who_may_address_the_twin() {
    let open = access(AccessFile::default());
    let bob = uid("@bob:x.org");
    let carol = uid("@carol:friends.org");

    let owner_only = RoomSettings::default();
    assert!(owner_only.may_address(&owner(), &open));
    assert!(!owner_only.may_address(&bob, &open));

    let members = settings(&["members"]);
    assert!(members.may_address(&bob, &open));
    assert!(members.may_address(&carol, &open));

    let globs = settings(&["owner", "@*:friends.org"]);
    assert!(globs.may_address(&carol, &open));
    assert!(!globs.may_address(&bob, &open));
    assert!(globs.may_address(&owner(), &open));

    // Without "owner" in the list the owner still may.
    assert!(settings(&["@bob:x.org"]).may_address(&owner(), &open));

    // The access policy's `rooms` list lets people in everywhere.
    let rooms = access(AccessFile {
        rooms: vec!["@bob:x.org".into()],
        ..AccessFile::default()
    });
    assert!(owner_only.may_address(&bob, &rooms));

    // Blocked wins, even over "members"; the owner is never blocked.
    let blocked = access(AccessFile {
        rooms: vec!["*".into()],
        blocked: vec!["@bob:x.org".into(), "@alice:x.org".into()],
        ..AccessFile::default()
    });
    assert!(!members.may_address(&bob, &blocked));
    assert!(members.may_address(&carol, &blocked));
    assert!(owner_only.may_address(&owner(), &blocked));

    // An entry that is not a glob matches nobody.
    assert!(!settings(&["@[bob:x.org"]).may_address(&bob, &open));
}

#[test]
fn commands_change_settings() {
    let mut s = RoomSettings::default();
    let said = s.apply_command(&["address", "members"]).unwrap();
    assert!(said.contains("Everyone"), "{said}");
    assert_eq!(s.address, ["members"]);

    let said = s
        .apply_command(&["address", "owner", "@bob:x.org", "@bob:x.org"])
        .unwrap();
    assert!(said.contains("`@bob:x.org`"), "{said}");
    assert_eq!(s.address, ["owner", "@bob:x.org"]);

    let said = s.apply_command(&["address", "owner"]).unwrap();
    assert!(said.contains("Only the owner"), "{said}");

    s.apply_command(&["unprompted", "on"]).unwrap();
    assert!(s.unprompted);
    s.apply_command(&["unprompted", "off"]).unwrap();
    assert!(!s.unprompted);

    let said = s
        .apply_command(&["tools", "read_file", "list_files"])
        .unwrap();
    assert!(said.contains("`read_file`, `list_files`"), "{said}");
    assert_eq!(s.tools, Some(vec!["read_file".into(), "list_files".into()]));
    s.apply_command(&["tools", "none"]).unwrap();
    assert_eq!(s.tools, Some(vec![]));
    s.apply_command(&["tools", "all"]).unwrap();
    assert_eq!(s.tools, None);
}

#[test]
fn bad_room_commands_get_usage_and_change_nothing() {
    let mut s = settings(&["owner", "@bob:x.org"]);
    let before = s.clone();
    for words in [
        &[][..],
        &["address"],
        &["address", "bob"],
        &["address", "members", "@[x"],
        &["unprompted"],
        &["unprompted", "sometimes"],
        &["unprompted", "on", "off"],
        &["tools"],
        &["tools", "read_file", "all"],
        &["tools", "none", "read_file"],
        &["tools", "rm -rf"],
        &["colour", "blue"],
    ] {
        match s.apply_command(words) {
            Err(PolicyError::Command(text)) => assert!(text.contains("Usage"), "{text}"),
            other => panic!("{words:?}: expected usage, got {other:?}"),
        }
        assert_eq!(s, before, "{words:?} changed the settings");
    }
}

#[test]
fn describe_summarizes() {
    let text = RoomSettings::default().describe();
    assert!(text.contains("the owner only"), "{text}");
    assert!(text.contains("off"), "{text}");
    assert!(text.contains("whatever the conversation allows"), "{text}");

    let s = RoomSettings {
        address: vec!["owner".into(), "@bob:x.org".into()],
        unprompted: true,
        tools: Some(vec!["read_file".into()]),
        stream: None,
    };
    let text = s.describe();
    assert!(text.contains("the owner and `@bob:x.org`"), "{text}");
    assert!(text.contains("**Unprompted:** on"), "{text}");
    assert!(text.contains("**Tools:** `read_file`"), "{text}");
    assert!(settings(&["members"]).describe().contains("everyone"));
}

#[test]
fn load_missing_is_default_and_save_round_trips() {
    let (_dir, home) = new_home();
    let room = rid("!abc:x.org");
    assert_eq!(
        RoomSettings::load(&home, &room).unwrap(),
        RoomSettings::default()
    );

    for tools in [None, Some(vec![]), Some(vec!["read_file".to_owned()])] {
        let s = RoomSettings {
            address: vec!["owner".into(), "@*:friends.org".into()],
            unprompted: true,
            tools,
            stream: Some(false),
        };
        s.save(&home, &room).unwrap();
        let text = home.read_to_string(&RoomSettings::path_for(&room)).unwrap();
        assert!(text.starts_with("# "), "{text}");
        assert_eq!(RoomSettings::load(&home, &room).unwrap(), s, "{text}");
    }
    // Other rooms are untouched.
    assert_eq!(
        RoomSettings::load(&home, &rid("!other:x.org")).unwrap(),
        RoomSettings::default()
    );
}

#[test]
fn partial_file_fills_in_defaults() {
    let (_dir, home) = new_home();
    let room = rid("!abc:x.org");
    home.write_atomic(&RoomSettings::path_for(&room), b"unprompted = true\n")
        .unwrap();
    let s = RoomSettings::load(&home, &room).unwrap();
    assert_eq!(s.address, ["owner"]);
    assert!(s.unprompted);
}

#[test]
fn broken_room_file_is_an_error_naming_the_file() {
    let (_dir, home) = new_home();
    let room = rid("!abc:x.org");
    let path = RoomSettings::path_for(&room);
    for text in [
        "address = [\n",
        "adress = [\"members\"]\n",
        "address = [\"bob\"]\n",
        "tools = [\"rm -rf\"]\n",
    ] {
        home.write_atomic(&path, text.as_bytes()).unwrap();
        match RoomSettings::load(&home, &room) {
            Err(PolicyError::Invalid { path: p, .. }) => assert_eq!(p, path, "{text}"),
            other => panic!("{text}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn stream_is_set_per_room() {
    let mut s = RoomSettings::default();
    assert!(
        s.apply_command(&["stream", "off"])
            .unwrap()
            .contains("one message")
    );
    assert_eq!(s.stream, Some(false));
    assert!(s.describe().contains("**Streaming:** off"));
    s.apply_command(&["stream", "default"]).unwrap();
    assert_eq!(s.stream, None);
    assert!(s.apply_command(&["stream", "maybe"]).is_err());
    assert_eq!(s.stream, None, "nothing changes on an error");
}
