use super::super::skills::split_front_matter;
use super::super::{HomeError, SkillMeta};
use super::new_home;

#[test]
fn builtin_skills_have_names_and_descriptions() {
    let (_dir, home) = new_home();
    let skills = home.skills().expect("skills");
    let names: Vec<_> = skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["daily-plan", "manage-todos", "summarize-room", "take-notes"]
    );
    for skill in &skills {
        assert!(
            skill.description.len() > 20 && !skill.description.contains("not valid YAML"),
            "{skill:?}"
        );
        assert_eq!(skill.path, format!("agents/skills/{}.md", skill.name));
    }
}

#[test]
fn skill_without_front_matter_uses_stem_and_first_line() {
    let (_dir, home) = new_home();
    home.write_atomic(
        "agents/skills/water-plants.md",
        b"\n# Water the plants weekly\n\nSteps...",
    )
    .expect("write");
    let skill = home
        .skills()
        .expect("skills")
        .into_iter()
        .find(|s| s.name == "water-plants")
        .expect("found");
    assert_eq!(
        skill,
        SkillMeta {
            name: "water-plants".into(),
            description: "Water the plants weekly".into(),
            path: "agents/skills/water-plants.md".into()
        }
    );
}

#[test]
fn broken_front_matter_does_not_hide_other_skills() {
    let (_dir, home) = new_home();
    home.write_atomic("agents/skills/bad.md", b"---\nname: [unclosed\n---\nbody")
        .expect("write");
    let skills = home.skills().expect("skills");
    assert_eq!(skills.len(), 5);
    let bad = skills.iter().find(|s| s.name == "bad").expect("bad");
    assert!(bad.description.contains("not valid YAML"), "{bad:?}");
}

#[test]
fn load_skill_by_name_or_stem() {
    let (_dir, home) = new_home();
    home.write_atomic(
        "agents/skills/x.md",
        b"---\nname: Fancy Name\ndescription: d\n---\nbody",
    )
    .expect("write");
    assert!(
        home.load_skill("take-notes")
            .expect("load")
            .contains("data/notes/")
    );
    assert!(
        home.load_skill("Fancy Name")
            .expect("by name")
            .ends_with("body")
    );
    assert!(home.load_skill("x").expect("by stem").ends_with("body"));
    assert!(home.load_skill("fancy name").is_ok());
}

#[test]
fn unknown_skill_lists_the_available_ones() {
    let (_dir, home) = new_home();
    let message = home
        .load_skill("juggling")
        .expect_err("unknown")
        .to_string();
    assert!(
        message.contains("juggling") && message.contains("summarize-room, take-notes"),
        "{message}"
    );
    std::fs::remove_dir_all(home.root().join("agents")).expect("rm");
    assert!(home.skills().expect("skills").is_empty());
    assert!(
        home.load_skill("x")
            .expect_err("none")
            .to_string()
            .contains("no skills")
    );
}

#[test]
fn display_name_comes_from_identity_front_matter() {
    let (_dir, home) = new_home();
    assert_eq!(
        home.display_name().expect("name").as_deref(),
        Some("alice's AI")
    );
    home.write_atomic("system/identity.md", b"# no front matter")
        .expect("write");
    assert_eq!(home.display_name().expect("name"), None);
    home.write_atomic("system/identity.md", b"---\nother: 1\n---\n")
        .expect("write");
    assert_eq!(home.display_name().expect("name"), None);
    home.write_atomic("system/identity.md", b"---\ndisplay_name: [x\n---\n")
        .expect("write");
    assert!(matches!(home.display_name(), Err(HomeError::Other(_))));
    std::fs::remove_file(home.root().join("system/identity.md")).expect("rm");
    assert_eq!(home.display_name().expect("name"), None);
}

#[test]
fn front_matter_is_split_only_at_the_top() {
    assert_eq!(
        split_front_matter("---\na: 1\n---\nbody"),
        Some(("a: 1\n", "body"))
    );
    assert_eq!(
        split_front_matter("\u{feff}---\r\na: 1\r\n---\r\nbody"),
        Some(("a: 1\r\n", "body"))
    );
    assert_eq!(split_front_matter("---\n---\n"), Some(("", "")));
    assert_eq!(split_front_matter("text\n---\na: 1\n---\n"), None);
    assert_eq!(split_front_matter("---\nunterminated"), None);
}
