//! Splits iCalendar text into unfolded content lines and a tree of components, checking the
//! structure (`NAME[;params]:value` lines, matching `BEGIN`/`END`) with the line numbers of the
//! file as written. Every component remembers which physical lines it spans, so components the
//! calendar does not change are written back exactly as they were read.

/// Deepest component nesting accepted (`VCALENDAR` > `VEVENT` > `VALARM` is 3).
const MAX_DEPTH: usize = 16;

/// A structural problem: 1-based physical line and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScanError {
    /// 1-based physical line.
    pub(super) line: usize,
    /// What is wrong.
    pub(super) problem: String,
}

fn fail<T>(line: usize, problem: impl Into<String>) -> Result<T, ScanError> {
    Err(ScanError {
        line,
        problem: problem.into(),
    })
}

/// One content line after unfolding.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// The unfolded text, without line ending.
    pub(super) text: String,
    /// The upper-cased property name.
    pub(super) name: String,
    /// 1-based physical line where it starts.
    pub(super) number: usize,
    /// 0-based index of its first and last physical line.
    first: usize,
    last: usize,
}

/// A component (`BEGIN:X` .. `END:X`).
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// Upper-cased component name (`VEVENT`).
    pub(super) name: String,
    /// 1-based physical line of its `BEGIN`.
    pub(super) number: usize,
    /// Its properties and sub-components, in file order.
    pub(super) items: Vec<Item>,
    /// 0-based index of its first (`BEGIN`) and last (`END`) physical line.
    first: usize,
    last: usize,
}

/// Something inside a component.
#[derive(Debug, Clone)]
pub(super) enum Item {
    /// A property line.
    Prop(Line),
    /// A nested component.
    Comp(Node),
}

impl Node {
    /// Its property lines.
    pub(super) fn props(&self) -> impl Iterator<Item = &Line> {
        self.items.iter().filter_map(|item| match item {
            Item::Prop(line) => Some(line),
            Item::Comp(_) => None,
        })
    }

    /// Its direct sub-components.
    pub(super) fn children(&self) -> impl Iterator<Item = &Node> {
        self.items.iter().filter_map(|item| match item {
            Item::Comp(node) => Some(node),
            Item::Prop(_) => None,
        })
    }
}

impl Item {
    /// The item's physical lines, each ending in CRLF.
    pub(super) fn raw(&self, doc: &Document) -> String {
        let (first, last) = match self {
            Item::Prop(line) => (line.first, line.last),
            Item::Comp(node) => (node.first, node.last),
        };
        let mut out = String::new();
        for physical in doc.physical.get(first..=last).unwrap_or_default() {
            out.push_str(physical);
            out.push_str("\r\n");
        }
        out
    }
}

/// A scanned file: the `VCALENDAR` component (if the text had any content) and the physical
/// lines it came from.
#[derive(Debug)]
pub(super) struct Document {
    /// The `VCALENDAR`, `None` for a blank text.
    pub(super) root: Option<Node>,
    physical: Vec<String>,
}

/// Scans `text` (CRLF or LF line endings, an optional UTF-8 byte order mark).
pub(super) fn scan(text: &str) -> Result<Document, ScanError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut physical: Vec<String> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect();
    if physical.last().is_some_and(String::is_empty) {
        physical.pop();
    }
    let lines = unfold(&physical)?;
    let root = build_tree(lines)?;
    Ok(Document { root, physical })
}

/// Joins continuation lines (starting with a space or tab) to the line before them.
fn unfold(physical: &[String]) -> Result<Vec<Line>, ScanError> {
    let mut lines: Vec<Line> = Vec::new();
    let mut open = false;
    for (index, text) in physical.iter().enumerate() {
        if let Some(rest) = text.strip_prefix([' ', '\t']) {
            match lines.last_mut() {
                Some(line) if open => {
                    line.text.push_str(rest);
                    line.last = index;
                }
                _ if text.trim().is_empty() => {}
                _ => {
                    return fail(
                        index + 1,
                        "a continuation line (starting with a space) with no content line before it",
                    );
                }
            }
        } else if text.trim().is_empty() {
            open = false;
        } else {
            open = true;
            lines.push(Line {
                text: text.clone(),
                name: String::new(),
                number: index + 1,
                first: index,
                last: index,
            });
        }
    }
    for line in &mut lines {
        line.name = property_name(&line.text).map_err(|problem| ScanError {
            line: line.number,
            problem,
        })?;
    }
    Ok(lines)
}

/// Checks the `name *(";" param) ":" value` shape and returns the upper-cased name.
fn property_name(text: &str) -> Result<String, String> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len());
    let shown = shorten(text);
    if end == 0 {
        return Err(format!(
            "expected a property name at the start of {shown:?}"
        ));
    }
    let mut quoted = false;
    for c in text[end..].chars() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Ok(text[..end].to_ascii_uppercase()),
            _ => {}
        }
    }
    if quoted {
        Err(format!("unterminated quote in the parameters of {shown:?}"))
    } else {
        Err(format!("expected NAME:VALUE, found {shown:?} (no ':')"))
    }
}

/// The value after the first `:` outside quotes (callers checked the shape already).
pub(super) fn raw_value(text: &str) -> &str {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return &text[i + 1..],
            _ => {}
        }
    }
    ""
}

/// At most 60 characters of `text`, for messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Builds the component tree, checking that `BEGIN` and `END` match and that everything is
/// inside one `VCALENDAR`.
fn build_tree(lines: Vec<Line>) -> Result<Option<Node>, ScanError> {
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    for line in lines {
        match line.name.as_str() {
            "BEGIN" => {
                let name = raw_value(&line.text).trim().to_ascii_uppercase();
                if name.is_empty() {
                    return fail(line.number, "BEGIN without a component name");
                }
                if let Some(done) = &root {
                    return fail(
                        line.number,
                        format!(
                            "BEGIN:{name} after the calendar ended on line {}",
                            done.last + 1
                        ),
                    );
                }
                if stack.is_empty() && name != "VCALENDAR" {
                    return fail(
                        line.number,
                        format!("expected BEGIN:VCALENDAR, found BEGIN:{name}"),
                    );
                }
                if stack.len() >= MAX_DEPTH {
                    return fail(line.number, "components are nested too deeply");
                }
                stack.push(Node {
                    name,
                    number: line.number,
                    items: Vec::new(),
                    first: line.first,
                    last: line.last,
                });
            }
            "END" => {
                let name = raw_value(&line.text).trim().to_ascii_uppercase();
                let Some(mut node) = stack.pop() else {
                    return fail(line.number, format!("END:{name} without a matching BEGIN"));
                };
                if node.name != name {
                    return fail(
                        line.number,
                        format!(
                            "END:{name} does not match BEGIN:{} of line {}",
                            node.name, node.number
                        ),
                    );
                }
                node.last = line.last;
                match stack.last_mut() {
                    Some(parent) => parent.items.push(Item::Comp(node)),
                    None => root = Some(node),
                }
            }
            _ => match stack.last_mut() {
                Some(parent) => parent.items.push(Item::Prop(line)),
                None if root.is_some() => {
                    return fail(line.number, "content after END:VCALENDAR");
                }
                None => {
                    return fail(
                        line.number,
                        format!("expected BEGIN:VCALENDAR, found {:?}", shorten(&line.text)),
                    );
                }
            },
        }
    }
    if let Some(open) = stack.pop() {
        return fail(
            open.number,
            format!("BEGIN:{0} is never closed (no END:{0})", open.name),
        );
    }
    Ok(root)
}
