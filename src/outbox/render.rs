//! Markdown replies rendered to Matrix HTML (`org.matrix.custom.html`) with a plain body.

use pulldown_cmark::{Event, Options, Parser, html};
use ruma::events::room::message::RoomMessageEventContent;

/// Renders Markdown; raw HTML written by the model is shown as text, never passed through.
pub fn render_markdown(markdown: &str) -> RoomMessageEventContent {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let parser = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, parser);
    RoomMessageEventContent::text_html(markdown.to_owned(), out.trim_end().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::events::room::message::MessageType;

    use super::*;

    fn html_of(md: &str) -> String {
        match render_markdown(md).msgtype {
            MessageType::Text(text) => text.formatted.unwrap().body,
            _ => unreachable!(),
        }
    }

    #[test]
    fn markdown_becomes_html_with_plain_body() {
        let content = render_markdown("**Hi** there\n\n- one\n- two");
        assert_eq!(content.body(), "**Hi** there\n\n- one\n- two");
        insta::assert_snapshot!(html_of("**Hi** there\n\n- one\n- two"), @r"
        <p><strong>Hi</strong> there</p>
        <ul>
        <li>one</li>
        <li>two</li>
        </ul>
        ");
    }

    #[test]
    fn raw_html_from_the_model_is_escaped() {
        let html = html_of("hello <img src=x onerror=alert(1)>");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img"), "{html}");
    }
}
