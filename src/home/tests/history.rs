use super::super::Home;
use super::super::template::FIRST_COMMIT;
use super::{OWNER, log, new_home, tracked};

#[test]
fn new_home_is_the_template_with_placeholders_filled_and_committed() {
    let (_dir, home) = new_home();
    assert_eq!(log(home.root()), [FIRST_COMMIT]);
    let repo = git2::Repository::open(home.root()).expect("repo");
    assert_eq!(repo.head().expect("head").shorthand().ok(), Some("main"));
    let commit = repo.head().expect("head").peel_to_commit().expect("commit");
    assert_eq!(commit.author().name().ok(), Some("matrix-os"));

    let files = tracked(home.root());
    for expected in [
        ".gitignore",
        "README.md",
        "system/soul.md",
        "system/identity.md",
        "system/user.md",
        "apps/README.md",
        "data/README.md",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} missing from {files:?}"
        );
    }
    let identity = home.read_to_string("system/identity.md").expect("identity");
    assert!(
        identity.contains("display_name: \"alice's AI\""),
        "{identity}"
    );
    assert!(identity.contains("@alice:example.org"), "{identity}");
    for file in &files {
        if file.ends_with(".md") {
            let text = home.read_to_string(file).expect("read");
            assert!(!text.contains("{{"), "unfilled placeholder in {file}");
        }
    }
    assert_eq!(home.commit("nothing").expect("commit"), None);
}

#[test]
fn reopening_an_existing_home_changes_nothing() {
    let (dir, home) = new_home();
    home.write_atomic("system/user.md", b"mine").expect("write");
    let again = Home::open_or_create(home.root(), None, "@bob:example.org").expect("reopen");
    assert_eq!(
        again.read_to_string("system/user.md").expect("read"),
        "mine"
    );
    assert_eq!(log(home.root()).len(), 1);
    let hidden: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(hidden, ["alice"], "no staging folders left behind");
}

#[test]
fn custom_template_folder_is_copied_without_its_git() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("tpl");
    std::fs::create_dir_all(template.join("system")).expect("mkdir");
    std::fs::create_dir_all(template.join(".git")).expect("mkdir");
    std::fs::write(template.join(".git/HEAD"), "junk").expect("write");
    std::fs::write(
        template.join("system/identity.md"),
        "---\ndisplay_name: Helper of {{owner_name}}\n---\n{{owner_id}}\n",
    )
    .expect("write");
    std::fs::write(template.join("keep.txt"), "{{owner_name}}").expect("write");
    let home = Home::open_or_create(
        &dir.path().join("homes/bob"),
        Some(&template),
        "@bob:example.org",
    )
    .expect("home");
    assert_eq!(
        home.display_name().expect("name").as_deref(),
        Some("Helper of bob")
    );
    assert_eq!(
        home.read_to_string("system/identity.md")
            .expect("read")
            .lines()
            .last(),
        Some("@bob:example.org")
    );
    assert_eq!(
        home.read_to_string("keep.txt").expect("read"),
        "{{owner_name}}",
        "only .md files are filled"
    );
    assert_eq!(log(home.root()), [FIRST_COMMIT]);
}

#[test]
fn missing_template_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Home::open_or_create(&dir.path().join("x"), Some(&dir.path().join("nope")), OWNER)
        .expect_err("no template");
    assert!(err.to_string().contains("home.template"), "{err}");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn empty_existing_folder_becomes_a_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("alice");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("README.md"), "my own readme").expect("write");
    let home = Home::open_or_create(&root, None, OWNER).expect("home");
    assert_eq!(
        home.read_to_string("README.md").expect("read"),
        "my own readme"
    );
    assert!(home.read_to_string("system/soul.md").is_ok());
    assert_eq!(log(&root), [FIRST_COMMIT]);
}

#[test]
fn homes_can_be_created_concurrently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roots: Vec<_> = (0..6)
        .map(|i| dir.path().join(format!("u{}", i % 3)))
        .collect();
    let threads: Vec<_> = roots
        .into_iter()
        .map(|root| {
            std::thread::spawn(move || {
                Home::open_or_create(&root, None, OWNER).map(|h| h.root().to_path_buf())
            })
        })
        .collect();
    for thread in threads {
        let root = thread.join().expect("thread").expect("home");
        assert_eq!(log(&root), [FIRST_COMMIT]);
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("read_dir").count(), 3);
}

#[test]
fn write_is_atomic_and_committed() {
    let (_dir, home) = new_home();
    home.write_atomic("data/notes/tea.md", b"# Tea\n")
        .expect("write");
    let id = home
        .commit("Add tea note")
        .expect("commit")
        .expect("changed");
    assert_eq!(id.len(), 40);
    assert_eq!(log(home.root())[0], "Add tea note");
    assert!(tracked(home.root()).contains(&"data/notes/tea.md".to_owned()));
    assert_eq!(home.commit("again").expect("commit"), None);
}

#[test]
fn commit_records_deletions_and_honors_gitignore() {
    let (_dir, home) = new_home();
    std::fs::remove_file(home.root().join("apps/README.md")).expect("rm");
    home.write_atomic("data/x.md.matrix-os-tmp", b"half")
        .expect("write");
    home.append_transcript("!r:x", &serde_json::json!("hi"))
        .expect("append");
    assert!(home.commit("Remove apps readme").expect("commit").is_some());
    let files = tracked(home.root());
    assert!(!files.contains(&"apps/README.md".to_owned()));
    assert!(
        files
            .iter()
            .all(|f| !f.ends_with(".matrix-os-tmp") && !f.starts_with("system/sessions/")),
        "{files:?}"
    );
}

#[test]
fn empty_commit_message_gets_a_default() {
    let (_dir, home) = new_home();
    home.write_atomic("a.md", b"a").expect("write");
    home.commit("  ").expect("commit").expect("changed");
    assert_eq!(log(home.root())[0], "Update home");
}
