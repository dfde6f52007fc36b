//! What a twin's message looks like on the wire: Markdown rendered, placed as a reply or in a
//! thread, mentioning whom it answers, an answer or a notice.

use ruma::{
    OwnedEventId, UserId,
    events::{
        Mentions,
        relation::{InReplyTo, Reply, Thread},
        room::message::{MessageType, Relation, RoomMessageEventContent},
    },
};

use super::render_markdown;

/// Where a message goes in its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// A plain message (a DM).
    Plain,
    /// A reply to the message.
    Reply(OwnedEventId),
    /// Into the thread, replying to the message.
    Thread {
        /// Thread root.
        root: OwnedEventId,
        /// The message answered.
        event: OwnedEventId,
    },
}

/// How a message looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// An answer (`m.text`).
    Answer,
    /// A service notice (`m.notice`): other bots and twins never answer those.
    Notice,
}

/// The content of a twin's message: Markdown rendered, placed as `reply` says, mentioning
/// `mention` (so the person is notified).
pub fn message_content(
    markdown: &str,
    style: Style,
    reply: &ReplyTo,
    mention: Option<&UserId>,
) -> RoomMessageEventContent {
    let mut content = render_markdown(markdown);
    if style == Style::Notice
        && let MessageType::Text(text) = content.msgtype
    {
        let mut notice =
            ruma::events::room::message::NoticeMessageEventContent::plain(text.body.clone());
        notice.formatted = text.formatted;
        content.msgtype = MessageType::Notice(notice);
    }
    content.relates_to = match reply {
        ReplyTo::Plain => None,
        ReplyTo::Reply(event) => Some(Relation::Reply(Reply::new(InReplyTo::new(event.clone())))),
        ReplyTo::Thread { root, event } => {
            Some(Relation::Thread(Thread::reply(root.clone(), event.clone())))
        }
    };
    content.mentions = Some(match mention {
        Some(user) => Mentions::with_user_ids([user.to_owned()]),
        None => Mentions::new(),
    });
    content
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::{owned_event_id, user_id};

    use super::*;

    fn json(content: &RoomMessageEventContent) -> String {
        serde_json::to_string_pretty(content).unwrap()
    }

    #[test]
    fn replies_threads_and_notices_on_the_wire() {
        let bob = user_id!("@bob:x");
        insta::assert_snapshot!(
            "reply",
            json(&message_content(
                "**ok**",
                Style::Answer,
                &ReplyTo::Reply(owned_event_id!("$q")),
                Some(bob)
            ))
        );
        insta::assert_snapshot!(
            "thread",
            json(&message_content(
                "ok",
                Style::Answer,
                &ReplyTo::Thread {
                    root: owned_event_id!("$root"),
                    event: owned_event_id!("$q")
                },
                Some(bob)
            ))
        );
        insta::assert_snapshot!(
            "notice",
            json(&message_content(
                "wait",
                Style::Notice,
                &ReplyTo::Plain,
                None
            ))
        );
    }
}
