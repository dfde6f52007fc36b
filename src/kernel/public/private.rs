//! Private blocks: the parts of a file that only the owner's turns see.

/// Removes every private block from `text`.
///
/// A block runs from a line holding `<!-- private -->` to a line holding `<!-- /private -->`
/// (case and whitespace inside the comment do not matter); both marker lines go too. It fails
/// closed: a line holding a marker is dropped whole, blocks nest (an inner opening needs its
/// own closing), and a block that is never closed removes everything to the end of the text.
pub(crate) fn strip_private(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth: usize = 0;
    for line in text.split_inclusive('\n') {
        let markers = markers(line);
        if markers.is_empty() {
            if depth == 0 {
                out.push_str(line);
            }
            continue;
        }
        for opens in markers {
            depth = if opens {
                depth.saturating_add(1)
            } else {
                depth.saturating_sub(1)
            };
        }
    }
    out
}

/// The private markers on a line, in order: `true` opens a block, `false` closes one.
fn markers(line: &str) -> Vec<bool> {
    let lower = line.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find("<!--") {
        let after = &rest[start + 4..];
        let Some(end) = after.find("-->") else {
            break;
        };
        let inner: String = after[..end].split_whitespace().collect();
        match inner.as_str() {
            "private" => found.push(true),
            "/private" => found.push(false),
            _ => {}
        }
        rest = &after[end + 3..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::strip_private;

    #[test]
    fn blocks_and_their_markers_are_removed() {
        let text = "# Soul\nBe kind.\n<!-- private -->\nSecret A\n<!-- /private -->\nBe brief.\n";
        assert_eq!(strip_private(text), "# Soul\nBe kind.\nBe brief.\n");
    }

    #[test]
    fn text_without_blocks_is_kept_as_is() {
        let text = "a\n<!-- a comment -->\nb";
        assert_eq!(strip_private(text), text);
    }

    #[test]
    fn markers_ignore_case_and_spacing() {
        let text = "a\n  <!--PRIVATE-->  \nx\n<!--   / Private   -->\nb\n<!-- Private -->\ny\n\
                    <!-- /PRIVATE -->\nc\n";
        assert_eq!(strip_private(text), "a\nb\nc\n");
    }

    #[test]
    fn an_unclosed_block_removes_everything_after_it() {
        let text = "public\n<!-- private -->\nsecret\n\nmore secret\n## Next section\n";
        assert_eq!(strip_private(text), "public\n");
    }

    #[test]
    fn nested_looking_blocks_end_at_the_outer_closing() {
        let text = "a\n<!-- private -->\nx\n<!-- private -->\ny\n<!-- /private -->\nz\n\
                    <!-- /private -->\nb\n";
        assert_eq!(strip_private(text), "a\nb\n");
        // A second opening without its own closing keeps the block open to the end.
        let text = "a\n<!-- private -->\nx\n<!-- private -->\ny\n<!-- /private -->\nz\n";
        assert_eq!(strip_private(text), "a\n");
    }

    #[test]
    fn lines_holding_a_marker_are_dropped_whole() {
        let text = "a\nkey: 1234 <!-- private --> <!-- /private -->\nb\nsecret <!-- private -->\n\
                    hidden\ntail <!-- /private -->\nc\n";
        assert_eq!(strip_private(text), "a\nb\nc\n");
    }

    #[test]
    fn a_stray_closing_is_dropped_and_windows_line_ends_work() {
        assert_eq!(strip_private("a\n<!-- /private -->\nb"), "a\nb");
        let text = "a\r\n<!-- private -->\r\nx\r\n<!-- /private -->\r\nb\r\n";
        assert_eq!(strip_private(text), "a\r\nb\r\n");
    }
}
