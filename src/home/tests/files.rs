use std::sync::Arc;

use super::super::{HomeError, MAX_LIST_ENTRIES, MAX_READ_BYTES};
use super::new_home;

#[test]
fn missing_file_reads_as_not_found() {
    let (_dir, home) = new_home();
    let err = home.read_to_string("data/nope.md").expect_err("missing");
    assert!(
        matches!(err, HomeError::NotFound(ref p) if p == "data/nope.md"),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn binary_and_non_utf8_files_are_refused() {
    let (_dir, home) = new_home();
    home.write_atomic("bin.dat", &[1, 2, 0, 3]).expect("write");
    home.write_atomic("latin1.txt", &[b'c', b'a', 0xE9])
        .expect("write");
    for rel in ["bin.dat", "latin1.txt"] {
        let message = home.read_to_string(rel).expect_err("binary").to_string();
        assert!(message.contains("not a text file"), "{message}");
    }
}

#[test]
fn oversized_file_is_refused_with_the_limit() {
    let (_dir, home) = new_home();
    let big = vec![b'a'; usize::try_from(MAX_READ_BYTES).expect("fits") + 1];
    home.write_atomic("big.txt", &big).expect("write");
    let message = home
        .read_to_string("big.txt")
        .expect_err("too big")
        .to_string();
    assert!(message.contains("256 KiB"), "{message}");
}

#[test]
fn reading_a_folder_says_it_is_a_folder() {
    let (_dir, home) = new_home();
    let message = home.read_to_string("data").expect_err("folder").to_string();
    assert!(message.contains("is a folder"), "{message}");
}

#[test]
fn write_creates_parents_and_leaves_no_temp_files() {
    let (_dir, home) = new_home();
    home.write_atomic("data/notes/deep/idea.md", b"# Idea\n")
        .expect("write");
    assert_eq!(
        home.read_to_string("data/notes/deep/idea.md")
            .expect("read"),
        "# Idea\n"
    );
    home.write_atomic("data/notes/deep/idea.md", b"replaced")
        .expect("overwrite");
    assert_eq!(
        home.read_to_string("data/notes/deep/idea.md")
            .expect("read"),
        "replaced"
    );
    let names: Vec<_> = std::fs::read_dir(home.root().join("data/notes/deep"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["idea.md"]);
}

#[cfg(unix)]
#[test]
fn written_files_are_private_to_the_service_user() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, home) = new_home();
    home.write_atomic("data/x.md", b"x").expect("write");
    let mode = std::fs::metadata(home.root().join("data/x.md"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let root = std::fs::metadata(home.root())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(
        root & 0o077,
        0,
        "the home is not readable by others: {root:o}"
    );
}

#[test]
fn writing_a_folder_path_is_refused() {
    let (_dir, home) = new_home();
    for rel in ["", "data"] {
        let message = home
            .write_atomic(rel, b"x")
            .expect_err("folder")
            .to_string();
        assert!(message.contains("is a folder"), "{message}");
    }
    let message = home
        .write_atomic("README.md/x.md", b"x")
        .expect_err("file as parent")
        .to_string();
    assert!(message.contains("cannot create the folder"), "{message}");
}

#[test]
fn edit_replaces_exactly_one_occurrence() {
    let (_dir, home) = new_home();
    home.write_atomic("t.md", b"one two three").expect("write");
    home.edit("t.md", "two", "2").expect("edit");
    assert_eq!(home.read_to_string("t.md").expect("read"), "one 2 three");
}

#[test]
fn edit_of_missing_text_says_not_found() {
    let (_dir, home) = new_home();
    home.write_atomic("t.md", b"one two").expect("write");
    let err = home.edit("t.md", "three", "3").expect_err("absent");
    assert!(matches!(err, HomeError::Edit(_)));
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn edit_of_repeated_text_asks_for_more_context() {
    let (_dir, home) = new_home();
    home.write_atomic("t.md", b"- [ ] a\n- [ ] b\n- [ ] c\n")
        .expect("write");
    let message = home
        .edit("t.md", "- [ ]", "- [x]")
        .expect_err("ambiguous")
        .to_string();
    assert!(
        message.contains("found 3 times") && message.contains("more context"),
        "{message}"
    );
    assert_eq!(
        home.read_to_string("t.md").expect("read"),
        "- [ ] a\n- [ ] b\n- [ ] c\n"
    );
    assert!(home.edit("t.md", "", "x").is_err());
    assert!(matches!(
        home.edit("nope.md", "a", "b"),
        Err(HomeError::NotFound(_))
    ));
}

#[test]
fn list_is_sorted_relative_and_hides_git() {
    let (_dir, home) = new_home();
    let top: Vec<_> = home
        .list("", false)
        .expect("list")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        top,
        [
            ".gitignore",
            "README.md",
            "agents",
            "apps",
            "data",
            "system"
        ]
    );

    let all = home.list(".", true).expect("list");
    let paths: Vec<_> = all.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(paths.contains(&"agents/skills/take-notes.md"));
    assert!(paths.iter().all(|p| !p.contains(".git/") && *p != ".git"));
    let skills_dir = all.iter().find(|e| e.path == "agents/skills").expect("dir");
    assert!(skills_dir.is_dir && skills_dir.size == 0);

    let sub: Vec<_> = home
        .list("agents/skills", false)
        .expect("list")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(
        sub.iter().all(|p| p.starts_with("agents/skills/")),
        "{sub:?}"
    );

    let file = home.list("README.md", false).expect("list file");
    assert_eq!(file.len(), 1);
    assert!(!file[0].is_dir && file[0].size > 0);
    assert!(matches!(
        home.list("nope", false),
        Err(HomeError::NotFound(_))
    ));
}

#[test]
fn list_is_capped() {
    let (_dir, home) = new_home();
    let many = home.root().join("data/many");
    std::fs::create_dir_all(&many).expect("mkdir");
    for i in 0..MAX_LIST_ENTRIES + 50 {
        std::fs::write(many.join(format!("{i:05}.txt")), "x").expect("write");
    }
    assert_eq!(
        home.list("data/many", false).expect("list").len(),
        MAX_LIST_ENTRIES
    );
}

#[test]
fn search_is_case_insensitive_with_line_numbers() {
    let (_dir, home) = new_home();
    home.write_atomic("data/notes/a.md", b"first\nBuy MILK today\nlast\n")
        .expect("write");
    home.write_atomic("data/notes/b.bin", b"milk\0binary")
        .expect("write");
    let hits = home.search("milk", "data", 10).expect("search");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        (hits[0].path.as_str(), hits[0].line, hits[0].text.as_str()),
        ("data/notes/a.md", 2, "Buy MILK today")
    );
    assert_eq!(
        home.search("MILK", "data/notes/a.md", 10)
            .expect("file")
            .len(),
        1
    );
    assert!(home.search("", "", 10).is_err());
}

#[test]
fn search_stops_at_max_hits() {
    let (_dir, home) = new_home();
    home.write_atomic("data/x.md", "needle\n".repeat(50).as_bytes())
        .expect("write");
    assert_eq!(home.search("needle", "", 7).expect("search").len(), 7);
    assert!(home.search("needle", "", 0).expect("search").is_empty());
}

#[test]
fn remember_appends_one_bullet_per_fact() {
    let (_dir, home) = new_home();
    home.remember("Prefers tea over coffee").expect("remember");
    home.remember("  Birthday:\n 3 May  ").expect("remember");
    home.remember("Prefers tea over coffee")
        .expect("duplicate is fine");
    let text = home.read_to_string("system/user.md").expect("read");
    assert!(text.starts_with("# About alice"), "{text}");
    assert!(
        text.ends_with("- Prefers tea over coffee\n- Birthday: 3 May\n"),
        "{text}"
    );
    assert!(home.remember(" \n").is_err());
    assert!(
        home.remember(&"x".repeat(5000))
            .expect_err("long")
            .to_string()
            .contains("limit")
    );
}

#[test]
fn remember_creates_user_file_when_missing() {
    let (_dir, home) = new_home();
    std::fs::remove_file(home.root().join("system/user.md")).expect("rm");
    home.remember("Lives in Lisbon").expect("remember");
    let text = home.read_to_string("system/user.md").expect("read");
    assert!(
        text.starts_with('#') && text.ends_with("- Lives in Lisbon\n"),
        "{text}"
    );
}

#[test]
fn transcript_lines_append_to_a_safe_file() {
    let (_dir, home) = new_home();
    home.append_transcript(
        "!room:example.org",
        &serde_json::json!({"n": 1, "text": "a\nb"}),
    )
    .expect("append");
    home.append_transcript("!room:example.org", &serde_json::json!({"n": 2}))
        .expect("append");
    let text = home
        .read_to_string("system/sessions/%21room%3Aexample.org.jsonl")
        .expect("read");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"n": 1, "text": "a\nb"}),
            serde_json::json!({"n": 2})
        ]
    );
}

#[test]
fn transcript_recovers_from_a_torn_last_line() {
    let (_dir, home) = new_home();
    std::fs::create_dir_all(home.root().join("system/sessions")).expect("mkdir");
    std::fs::write(
        home.root().join("system/sessions/%21r%3Ax.jsonl"),
        "{\"torn\":",
    )
    .expect("write");
    home.append_transcript("!r:x", &serde_json::json!({"ok": true}))
        .expect("append");
    let text = home
        .read_to_string("system/sessions/%21r%3Ax.jsonl")
        .expect("read");
    assert_eq!(text.lines().last(), Some("{\"ok\":true}"));
}

#[test]
fn concurrent_rooms_can_write_and_commit() {
    let (_dir, home) = new_home();
    let home = Arc::new(home);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let home = Arc::clone(&home);
            std::thread::spawn(move || {
                for i in 0..10 {
                    home.write_atomic(&format!("data/t{t}/{i}.md"), b"x")
                        .expect("write");
                    home.remember(&format!("fact {t}-{i}")).expect("remember");
                    home.append_transcript(&format!("!room{t}:x"), &serde_json::json!(i))
                        .expect("append");
                    home.commit(&format!("thread {t} step {i}"))
                        .expect("commit");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    assert_eq!(home.commit("after").expect("commit"), None);
    let facts = home.read_to_string("system/user.md").expect("read");
    assert_eq!(
        facts.lines().filter(|l| l.starts_with("- fact ")).count(),
        40
    );
    assert_eq!(
        home.list("data", true)
            .expect("list")
            .iter()
            .filter(|e| !e.is_dir && e.path.starts_with("data/t"))
            .count(),
        40
    );
}
