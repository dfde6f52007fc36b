use super::super::{HomeError, transcript_file_name};
use super::new_home;

#[test]
fn empty_and_dot_mean_the_home_root() {
    let (_dir, home) = new_home();
    assert_eq!(home.resolve("").expect("empty"), home.root());
    assert_eq!(home.resolve(".").expect("dot"), home.root());
}

#[test]
fn relative_paths_resolve_inside_the_home() {
    let (_dir, home) = new_home();
    assert_eq!(
        home.resolve("./a/b").expect("resolve"),
        home.root().join("a/b")
    );
    assert_eq!(
        home.resolve("a/../b/c.md").expect("resolve"),
        home.root().join("b/c.md")
    );
    assert_eq!(
        home.resolve("data/new/deep/file.md").expect("resolve"),
        home.root().join("data/new/deep/file.md")
    );
}

#[test]
fn dotdot_path_is_refused() {
    let (_dir, home) = new_home();
    for rel in ["..", "../x", "a/../../x", "data/../../alice/x", "./.."] {
        assert!(
            matches!(home.resolve(rel), Err(HomeError::Escape(_))),
            "{rel}"
        );
    }
}

#[test]
fn absolute_path_is_refused() {
    let (_dir, home) = new_home();
    let inside = home.root().join("README.md");
    for rel in ["/etc/passwd", "/", inside.to_str().expect("utf8")] {
        assert!(
            matches!(home.resolve(rel), Err(HomeError::Escape(_))),
            "{rel}"
        );
    }
}

#[test]
fn git_folder_is_refused() {
    let (_dir, home) = new_home();
    for rel in [
        ".git",
        ".git/config",
        "./.git/HEAD",
        "data/../.git",
        ".GIT/config",
        "apps/x/.git/config",
    ] {
        assert!(
            matches!(home.resolve(rel), Err(HomeError::Escape(_))),
            "{rel}"
        );
    }
    assert!(home.write_atomic(".git/config", b"x").is_err());
    assert!(home.read_to_string(".git/HEAD").is_err());
}

#[test]
fn escape_error_tells_the_model_what_to_do() {
    let (_dir, home) = new_home();
    let message = home.resolve("../x").expect_err("escape").to_string();
    assert!(
        message.contains("../x") && message.contains("relative"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn symlink_out_of_home_is_refused() {
    let (dir, home) = new_home();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), "secret").expect("write");
    std::os::unix::fs::symlink(&outside, home.root().join("data/link")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.txt"), home.root().join("leak.txt"))
        .expect("symlink");

    for rel in [
        "data/link",
        "data/link/secret.txt",
        "data/link/new/file.md",
        "leak.txt",
    ] {
        assert!(
            matches!(home.resolve(rel), Err(HomeError::Escape(_))),
            "{rel}"
        );
    }
    assert!(home.read_to_string("leak.txt").is_err());
    assert!(home.write_atomic("data/link/x.md", b"x").is_err());
    assert!(!outside.join("x.md").exists());
    let hits = home.search("secret", "", 10).expect("search");
    assert!(hits.is_empty(), "search followed a symlink out: {hits:?}");
}

#[cfg(unix)]
#[test]
fn symlink_inside_home_is_allowed() {
    let (_dir, home) = new_home();
    std::os::unix::fs::symlink(home.root().join("data"), home.root().join("d")).expect("symlink");
    assert!(home.resolve("d/README.md").is_ok());
    assert!(
        home.read_to_string("d/README.md")
            .expect("read")
            .contains("Data")
    );
}

#[cfg(unix)]
#[test]
fn dangling_symlink_is_refused_clearly() {
    let (dir, home) = new_home();
    std::os::unix::fs::symlink(dir.path().join("nowhere"), home.root().join("gone"))
        .expect("symlink");
    let message = home.resolve("gone/x.md").expect_err("dangling").to_string();
    assert!(message.contains("points nowhere"), "{message}");
}

#[test]
fn transcript_file_names_are_safe_and_distinct() {
    assert_eq!(
        transcript_file_name("!abc:example.org"),
        "%21abc%3Aexample.org.jsonl"
    );
    assert_eq!(transcript_file_name("!a_b-c.d:x"), "%21a_b-c.d%3Ax.jsonl");
    assert_ne!(
        transcript_file_name("!a/b:x"),
        transcript_file_name("!a%2Fb:x")
    );
    assert_eq!(transcript_file_name(".."), "%2E..jsonl");
    for name in [
        transcript_file_name("!a/../b:x"),
        transcript_file_name(&"!é".repeat(200)),
    ] {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-%~".contains(&b)),
            "{name}"
        );
        assert!(name.len() < 255, "{name}");
    }
    assert_ne!(
        transcript_file_name(&"!a".repeat(200)),
        transcript_file_name(&"!a".repeat(201))
    );
}
