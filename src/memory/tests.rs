#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{files::parse, index::fts_query, *};

fn home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::open_or_create(&dir.path().join("h"), None, "@alice:x").unwrap();
    (dir, home)
}

#[test]
fn entries_are_list_items_and_paragraphs() {
    let text = "---\ntitle: x\n---\n# Memory\n\n- 2026-12-01: Likes green tea\n* Sister is \
                Anna\n1. Allergic to\n   peanuts\n\nA paragraph\nover two lines.\n";
    assert_eq!(
        parse(text),
        vec![
            "2026-12-01: Likes green tea",
            "Sister is Anna",
            "Allergic to peanuts",
            "A paragraph over two lines.",
        ]
    );
}

#[test]
fn queries_are_quoted_words_without_syntax() {
    assert_eq!(
        fts_query("What's my sister's NAME? OR* \"x\" NEAR(a b)").unwrap(),
        "\"sister\" OR \"name\" OR \"near\""
    );
    assert_eq!(fts_query("is it?"), None);
    assert_eq!(fts_query("茶").unwrap(), "\"茶\"");
}

#[test]
fn remember_appends_once_and_forget_removes() {
    let (_dir, home) = home();
    assert!(remember(&home, "Likes  green\ntea", "2026-12-07").unwrap());
    assert!(
        !remember(&home, "likes green tea", "2026-12-08").unwrap(),
        "known"
    );
    assert!(remember(&home, "Sister is Anna", "2026-12-07").unwrap());
    let text = home.read_to_string(MEMORY_FILE).unwrap();
    assert!(text.contains("- 2026-12-07: Likes green tea\n"), "{text}");
    assert_eq!(collect(&home).len(), 2, "two entries; the heading is none");
    assert!(remember(&home, " ", "2026-12-07").is_err());
    assert!(remember(&home, &"x".repeat(5000), "2026-12-07").is_err());

    assert!(forget(&home, "an").is_err(), "too short");
    let gone = forget(&home, "GREEN tea").unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].source, MEMORY_FILE);
    let text = home.read_to_string(MEMORY_FILE).unwrap();
    assert!(
        !text.contains("green tea") && text.contains("Sister is Anna"),
        "{text}"
    );
    assert!(forget(&home, "nothing like this").unwrap().is_empty());
}

#[test]
fn vague_words_forget_nothing() {
    let (_dir, home) = home();
    for i in 0..12 {
        remember(&home, &format!("note {i} about work"), "2026-12-07").unwrap();
    }
    assert!(forget(&home, "about work").is_err());
    assert_eq!(collect(&home).len(), 12, "nothing removed");
}

#[tokio::test]
async fn search_finds_the_relevant_entries_first() {
    let (_dir, home) = home();
    remember(&home, "Sister Anna lives in Lyon", "2026-12-01").unwrap();
    remember(&home, "Likes green tea, no sugar", "2026-12-02").unwrap();
    remember(&home, "Dentist appointment every March", "2026-12-03").unwrap();
    home.write_atomic(
        "system/summaries/session-1.md",
        b"# Session\n\nWe planned a trip to Lyon to visit Anna.\n",
    )
    .unwrap();
    let entries = collect(&home);
    let found = search(&entries, "Where does my sister live?", 5)
        .await
        .unwrap();
    assert_eq!(found[0].text, "2026-12-01: Sister Anna lives in Lyon");
    let found = search(&entries, "trip to Lyon", 5).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|e| e.source == "system/summaries/session-1.md")
    );
    assert!(
        search(&entries, "teas", 5).await.unwrap()[0]
            .text
            .contains("green tea"),
        "stemmed"
    );
    assert!(
        search(&entries, "quantum physics", 5)
            .await
            .unwrap()
            .is_empty()
    );
    let home = Arc::new(home);
    let found = relevant(home.clone(), "dentist", 1).await;
    assert_eq!(found.len(), 1);
    assert!(found[0].text.contains("Dentist"));
    // Fewer matches than asked: the newest entries fill up, best matches first.
    let found = relevant(home.clone(), "my favorite color", 2).await;
    assert_eq!(
        found.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        [
            "2026-12-03: Dentist appointment every March",
            "2026-12-02: Likes green tea, no sugar"
        ]
    );
    let found = relevant(home, "Lyon", 2).await;
    assert!(found[0].text.contains("Lyon"), "{found:?}");
}
