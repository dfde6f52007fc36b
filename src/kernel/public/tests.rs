//! Confinement to `system/public/` and the public prompt, against real homes in temp dirs.

use std::sync::Arc;

use super::{
    confine,
    prompt::{PublicParts, compose, read_home},
    read_unlinked,
};
use crate::home::{Home, HomeError};

fn new_home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::open_or_create(&dir.path().join("alice"), None, "@alice:example.org").unwrap();
    (dir, home)
}

#[cfg(unix)]
fn link(home: &Home, target: &str, at: &str) {
    std::os::unix::fs::symlink(target, home.root().join(at)).unwrap();
}

#[test]
fn public_paths_are_allowed_and_come_back_relative_to_the_home() {
    let (_dir, home) = new_home();
    assert_eq!(
        confine(&home, "system/public/profile.md").unwrap(),
        "system/public/profile.md"
    );
    assert_eq!(
        confine(&home, "./system/public/x/../profile.md").unwrap(),
        "system/public/profile.md"
    );
    assert_eq!(confine(&home, "system/public").unwrap(), "system/public");
    // Missing files inside the public folder pass, to be reported missing when opened.
    assert_eq!(
        confine(&home, "system/public/new/nope.md").unwrap(),
        "system/public/new/nope.md"
    );
}

#[test]
fn everything_outside_the_public_folder_is_refused() {
    let (_dir, home) = new_home();
    for rel in [
        "system/public/../user.md",
        "system/user.md",
        "system/soul.md",
        "data/README.md",
        "data/nope.md",
        "",
        ".",
        "..",
        "../x",
        "../alice/system/public/profile.md",
        "/etc/passwd",
        "system/publicity.md",
        "system/public/.git/config",
        "system/sessions/%21abc%3Aexample.org.jsonl",
    ] {
        let error = confine(&home, rel).unwrap_err();
        assert!(
            !matches!(error, HomeError::NotFound(_)),
            "{rel:?} must be refused, not reported missing: {error}"
        );
    }
    let message = confine(&home, "system/user.md").unwrap_err().to_string();
    assert!(
        message.contains("not available in this conversation"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn links_out_of_the_public_folder_are_refused() {
    let (_dir, home) = new_home();
    home.write_atomic("data/secret.md", b"secret").unwrap();
    link(&home, "../user.md", "system/public/user.md");
    link(&home, "../../data", "system/public/data");
    link(&home, "/etc/passwd", "system/public/passwd");
    link(&home, "profile.md", "system/public/alias.md");
    link(&home, "nowhere.md", "system/public/dangling.md");
    for rel in [
        "system/public/user.md",
        "system/public/data",
        "system/public/data/secret.md",
        "system/public/data/missing.md",
        "system/public/passwd",
        "system/public/dangling.md",
    ] {
        assert!(confine(&home, rel).is_err(), "{rel}");
    }
    // A link that stays inside is followed, and the real path is what gets opened.
    assert_eq!(
        confine(&home, "system/public/alias.md").unwrap(),
        "system/public/profile.md"
    );
}

#[cfg(unix)]
#[test]
fn a_public_folder_that_is_a_link_elsewhere_is_refused() {
    let (_dir, home) = new_home();
    std::fs::remove_dir_all(home.root().join("system/public")).unwrap();
    link(&home, "../data", "system/public");
    assert!(confine(&home, "system/public").is_err());
    assert!(confine(&home, "system/public/README.md").is_err());
}

#[cfg(unix)]
#[test]
fn self_files_reached_through_a_link_are_not_read() {
    let (_dir, home) = new_home();
    assert!(read_unlinked(&home, "system/soul.md").is_ok());
    std::fs::remove_file(home.root().join("system/identity.md")).unwrap();
    link(&home, "user.md", "system/identity.md");
    assert!(matches!(
        read_unlinked(&home, "system/identity.md"),
        Err(HomeError::Escape(_))
    ));
}

#[test]
fn public_prompt_has_preamble_public_files_room_and_person() {
    let parts = PublicParts {
        owner_id: "@alice:example.org".into(),
        owner_name: "alice".into(),
        files: vec![
            ("system/soul.md".into(), "# Soul\n\nBe kind.\n".into()),
            ("system/identity.md".into(), "I am alice's AI.\n".into()),
            (
                "system/public/profile.md".into(),
                "Alice bakes bread on Sundays.\n".into(),
            ),
        ],
    };
    insta::assert_snapshot!(compose(&parts, "@bob:example.org", "!abc:example.org"));
}

#[tokio::test]
async fn public_prompt_from_the_template_holds_no_private_file() {
    let (_dir, home) = new_home();
    home.write_atomic("system/user.md", b"- CANARY-USER\n")
        .unwrap();
    home.edit(
        "system/soul.md",
        "## Private notes\n",
        "## Private notes\n\nCANARY-SOUL\n",
    )
    .unwrap();
    home.write_atomic("system/public/more/hours.md", b"Open 9 to 5.\n")
        .unwrap();
    home.write_atomic("system/public/notes.txt", b"not markdown\n")
        .unwrap();
    #[cfg(unix)]
    link(&home, "../user.md", "system/public/leak.md");
    let parts = read_home(Arc::new(home)).await;
    let paths: Vec<&str> = parts.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "system/soul.md",
            "system/identity.md",
            "system/public/more/hours.md",
            "system/public/profile.md",
        ]
    );
    let prompt = compose(&parts, "@bob:example.org", "!r:x");
    insta::assert_snapshot!(prompt);
    for secret in ["CANARY", "Private notes", "load_skill", "## Skills"] {
        assert!(!prompt.contains(secret), "{secret} leaked: {prompt}");
    }
    assert!(prompt.contains("Open 9 to 5."));
    assert!(prompt.contains("Speaking with: @bob:example.org"));
}
