//! Front matter: skills in `agents/skills/*.md` and the twin's identity.

use std::fs;
use std::path::Path;

use serde::Deserialize;

use super::ops::{io_error, read_text};
use super::{HomeError, SkillMeta};

/// Folder holding one skill per `.md` file.
pub(super) const SKILLS_DIR: &str = "agents/skills";
/// File whose front matter names the twin.
pub(super) const IDENTITY_FILE: &str = "system/identity.md";
/// Longest description taken from a file's first line when it has no front matter.
const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
struct SkillFrontMatter {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct IdentityFrontMatter {
    #[serde(default)]
    display_name: Option<String>,
}

/// Splits a leading `---` ... `---` (or `...`) block off `text`: `(yaml, body)`.
pub(super) fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "---" {
        return None;
    }
    let start = first.len();
    let mut offset = start;
    for line in lines {
        if matches!(line.trim_end(), "---" | "...") {
            return Some((&text[start..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

fn parse_yaml<T: Default + for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
    // An empty block is valid front matter meaning "nothing set", which YAML parses as null.
    if yaml.trim().is_empty() {
        return Ok(T::default());
    }
    serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
}

/// The first non-empty line, without Markdown heading marks, clipped.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(MAX_DESCRIPTION_CHARS).collect()
}

fn meta_of(stem: &str, rel: String, text: &str) -> SkillMeta {
    let (front, body) = match split_front_matter(text) {
        Some((yaml, body)) => match parse_yaml::<SkillFrontMatter>(yaml) {
            Ok(front) => (front, body),
            // One broken skill must not hide the others; say what is wrong instead.
            Err(e) => {
                let description = format!("(front matter of {rel} is not valid YAML: {e})");
                return SkillMeta {
                    name: stem.to_owned(),
                    description,
                    path: rel,
                };
            }
        },
        None => (SkillFrontMatter::default(), text),
    };
    let non_empty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    SkillMeta {
        name: non_empty(front.name).unwrap_or_else(|| stem.to_owned()),
        description: non_empty(front.description).unwrap_or_else(|| first_line(body)),
        path: rel,
    }
}

pub(super) fn list(root: &Path) -> Result<Vec<SkillMeta>, HomeError> {
    let dir = root.join(SKILLS_DIR);
    let read = match fs::read_dir(&dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", SKILLS_DIR, &e)),
    };
    let mut files: Vec<_> = read
        .filter_map(Result::ok)
        // Plain files only: a symlink could pull in text from outside the home.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "md"))
        .collect();
    files.sort();
    let mut skills = Vec::with_capacity(files.len());
    for path in files {
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = format!("{SKILLS_DIR}/{file_name}");
        let text = read_text(&path, &rel)?;
        skills.push(meta_of(&stem, rel, &text));
    }
    Ok(skills)
}

pub(super) fn load(root: &Path, name: &str) -> Result<String, HomeError> {
    let skills = list(root)?;
    let wanted = name.trim();
    let stem_of = |s: &SkillMeta| {
        Path::new(&s.path)
            .file_stem()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let found = skills
        .iter()
        .find(|s| s.name == wanted)
        .or_else(|| skills.iter().find(|s| stem_of(s) == wanted))
        .or_else(|| skills.iter().find(|s| s.name.eq_ignore_ascii_case(wanted)))
        .or_else(|| {
            skills
                .iter()
                .find(|s| stem_of(s).eq_ignore_ascii_case(wanted))
        });
    match found {
        Some(skill) => read_text(&root.join(&skill.path), &skill.path),
        None if skills.is_empty() => Err(HomeError::Other(format!(
            "there is no skill called {wanted:?}: no skills are installed ({SKILLS_DIR}/ has no \
             .md files)"
        ))),
        None => {
            let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
            Err(HomeError::Other(format!(
                "there is no skill called {wanted:?}; available skills: {}",
                names.join(", ")
            )))
        }
    }
}

pub(super) fn display_name(root: &Path) -> Result<Option<String>, HomeError> {
    let text = match read_text(&root.join(IDENTITY_FILE), IDENTITY_FILE) {
        Ok(text) => text,
        Err(HomeError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    display_name_in(&text)
}

/// The display name in the front matter of an identity file's `text`.
pub(super) fn display_name_in(text: &str) -> Result<Option<String>, HomeError> {
    let Some((yaml, _)) = split_front_matter(text) else {
        return Ok(None);
    };
    let front: IdentityFrontMatter = parse_yaml(yaml).map_err(|e| {
        HomeError::Other(format!(
            "the front matter of {IDENTITY_FILE} is not valid YAML: {e}"
        ))
    })?;
    Ok(front
        .display_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty()))
}
