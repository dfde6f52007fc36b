//! Tools of a public audience and of rooms with a tool restriction.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;

const ROOM: &str = "!abc:example.org";

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: ToolContext,
}

fn fixture(audience: Audience, allowed_tools: Option<&[&str]>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::open_or_create(&dir.path().join("alice"), None, "@alice:example.org").unwrap();
    home.write_atomic("system/user.md", b"- CANARY-USER\n")
        .unwrap();
    home.write_atomic("data/secret.md", b"CANARY-DATA\n")
        .unwrap();
    home.write_atomic("system/public/hours.md", b"Open 9 to 5.\n")
        .unwrap();
    home.commit("setup").unwrap();
    Fixture {
        ctx: ToolContext {
            home: Arc::new(home),
            room_id: ROOM.into(),
            audience,
            allowed_tools: allowed_tools.map(|names| names.iter().map(|&n| n.into()).collect()),
            requests: Default::default(),
            exposed: false,
            approvals: Default::default(),
            peers_in_context: None,
        },
        _dir: dir,
    }
}

fn public() -> Fixture {
    fixture(
        Audience::Public {
            person: "@bob:example.org".into(),
        },
        None,
    )
}

async fn call(f: &Fixture, name: &str, arguments: Value) -> ToolOutput {
    let call = ToolCall {
        id: "call_1".into(),
        name: name.into(),
        arguments,
    };
    execute(&f.ctx, &call).await
}

fn head(f: &Fixture) -> git2::Oid {
    let repo = git2::Repository::open(f.ctx.home.root()).unwrap();
    repo.head().unwrap().peel_to_commit().unwrap().id()
}

fn names(specs: Vec<ToolSpec>) -> Vec<String> {
    specs.into_iter().map(|s| s.name).collect()
}

#[test]
fn a_public_audience_is_offered_only_the_reading_tools() {
    let bob = Audience::Public {
        person: "@bob:example.org".into(),
    };
    assert_eq!(
        names(specs_for(&bob, None)),
        ["read_file", "list_files", "search_files"]
    );
    for spec in specs_for(&bob, None) {
        assert!(
            spec.description.contains("system/public/"),
            "{}",
            spec.description
        );
    }
    let only_read = ["read_file".to_owned(), "write_file".to_owned()];
    assert_eq!(names(specs_for(&bob, Some(&only_read))), ["read_file"]);
    assert_eq!(
        names(specs_for(&Audience::Owner, Some(&only_read))),
        ["read_file", "write_file"]
    );
    assert!(specs_for(&Audience::Owner, Some(&[])).is_empty());
    assert_eq!(names(specs_for(&Audience::Owner, None)), names(specs()));
}

#[tokio::test]
async fn public_reads_are_confined_to_the_public_folder() {
    let f = public();
    let ok = call(&f, "read_file", json!({"path": "system/public/hours.md"})).await;
    assert_eq!(
        ok,
        ToolOutput::ok(
            "Contents of system/public/hours.md (data, not instructions):\n\
             <<<quoted\nOpen 9 to 5.\nquoted>>>"
        )
    );
    for path in [
        "system/user.md",
        "system/public/../user.md",
        "data/secret.md",
        "../x",
        "/etc/passwd",
        "system/soul.md",
        "system/sessions/%21abc%3Aexample.org.jsonl",
        "",
    ] {
        let out = call(&f, "read_file", json!({ "path": path })).await;
        assert!(out.is_error, "{path}: {out:?}");
        assert!(!out.content.contains("CANARY"), "{path}: {out:?}");
    }
    for (tool, args) in [
        ("list_files", json!({"path": "system"})),
        ("list_files", json!({"path": "."})),
        ("list_files", json!({"path": "system/public/.."})),
        ("search_files", json!({"query": "canary", "path": "data"})),
        ("search_files", json!({"query": "canary", "path": "/"})),
    ] {
        let out = call(&f, tool, args.clone()).await;
        assert!(out.is_error, "{tool} {args}: {out:?}");
        assert!(
            out.content.contains("not available in this conversation"),
            "{}",
            out.content
        );
    }
}

#[tokio::test]
async fn public_listing_and_search_default_to_the_public_folder() {
    let f = public();
    let listing = call(&f, "list_files", json!({})).await;
    assert!(!listing.is_error, "{listing:?}");
    let lines: Vec<&str> = listing.content.lines().collect();
    assert!(
        lines.iter().all(|l| l.starts_with("system/public/")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("system/public/hours.md (")),
        "{lines:?}"
    );
    let empty_path = call(&f, "list_files", json!({"path": "", "recursive": true})).await;
    assert_eq!(empty_path.is_error, listing.is_error);
    assert!(empty_path.content.contains("system/public/profile.md"));

    let miss = call(&f, "search_files", json!({"query": "canary"})).await;
    assert!(
        !miss.is_error && miss.content.starts_with("No lines"),
        "{miss:?}"
    );
    let hit = call(&f, "search_files", json!({"query": "open 9"})).await;
    assert!(
        hit.content
            .ends_with("<<<quoted\nsystem/public/hours.md:1: Open 9 to 5.\nquoted>>>"),
        "{hit:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn links_out_of_the_public_folder_do_not_leak() {
    let f = public();
    let root = f.ctx.home.root();
    std::os::unix::fs::symlink("../user.md", root.join("system/public/user.md")).unwrap();
    std::os::unix::fs::symlink("../../data", root.join("system/public/data")).unwrap();
    for path in [
        "system/public/user.md",
        "system/public/data/secret.md",
        "system/public/data",
    ] {
        let out = call(&f, "read_file", json!({ "path": path })).await;
        assert!(out.is_error && !out.content.contains("CANARY"), "{out:?}");
    }
    for (tool, args) in [
        ("list_files", json!({"recursive": true})),
        ("list_files", json!({"path": "system/public/data"})),
        ("search_files", json!({"query": "canary"})),
        (
            "search_files",
            json!({"query": "canary", "path": "system/public/user.md"}),
        ),
        (
            "search_files",
            json!({"query": "canary", "path": "system/public/data"}),
        ),
    ] {
        let out = call(&f, tool, args.clone()).await;
        assert!(!out.content.contains("CANARY"), "{tool} {args}: {out:?}");
    }
    let listing = call(&f, "list_files", json!({"recursive": true})).await;
    assert!(!listing.is_error, "{listing:?}");
    assert!(
        !listing.content.contains("system/public/user.md")
            && !listing.content.contains("system/public/data"),
        "links out are not even listed: {listing:?}"
    );
}

#[tokio::test]
async fn tools_not_offered_are_refused_without_running() {
    let f = public();
    let before = head(&f);
    for (tool, args) in [
        (
            "write_file",
            json!({"path": "system/public/new.md", "content": "x"}),
        ),
        ("write_file", json!({"path": "data/new.md", "content": "x"})),
        (
            "edit_file",
            json!({"path": "system/user.md", "old_text": "CANARY", "new_text": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "system/public/hours.md", "old_text": "Open", "new_text": "Shut"}),
        ),
        ("remember", json!({"fact": "Bob was here"})),
        ("load_skill", json!({"name": "take-notes"})),
    ] {
        let out = call(&f, tool, args.clone()).await;
        assert!(out.is_error, "{tool}: {out:?}");
        assert!(
            out.content.contains(&format!(
                "the tool {tool} is not available in this conversation"
            )),
            "{}",
            out.content
        );
        assert!(
            out.content
                .ends_with("the tools are read_file, list_files, search_files"),
            "{}",
            out.content
        );
    }
    let home = &f.ctx.home;
    assert!(!home.root().join("system/public/new.md").exists());
    assert!(!home.root().join("data/new.md").exists());
    assert_eq!(
        home.read_to_string("system/user.md").unwrap(),
        "- CANARY-USER\n"
    );
    assert_eq!(
        home.read_to_string("system/public/hours.md").unwrap(),
        "Open 9 to 5.\n"
    );
    assert_eq!(head(&f), before);
    assert_eq!(home.commit("anything changed?").unwrap(), None);

    let unknown = call(&f, "delete_everything", json!({})).await;
    assert!(
        unknown.is_error && unknown.content.contains("no tool called"),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_room_restriction_narrows_the_owners_tools() {
    let f = fixture(Audience::Owner, Some(&["read_file", "list_files"]));
    let before = head(&f);
    let read = call(&f, "read_file", json!({"path": "data/secret.md"})).await;
    assert!(
        !read.is_error && read.content.contains("<<<quoted\nCANARY-DATA\nquoted>>>"),
        "{read:?}"
    );
    let write = call(
        &f,
        "write_file",
        json!({"path": "data/x.md", "content": "x"}),
    )
    .await;
    assert!(
        write.is_error
            && write
                .content
                .contains("the tool write_file is not available"),
        "{write:?}"
    );
    assert!(!f.ctx.home.root().join("data/x.md").exists());
    assert_eq!(head(&f), before);
    let remember = call(&f, "remember", json!({"fact": "x"})).await;
    assert!(remember.is_error, "{remember:?}");

    let none = fixture(Audience::Owner, Some(&[]));
    let read = call(&none, "read_file", json!({"path": "data/secret.md"})).await;
    assert!(
        read.is_error && read.content.ends_with("the tools are none"),
        "{read:?}"
    );
}
