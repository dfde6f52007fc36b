//! What the model reads as the person's message: who says it and, in a group, what was said
//! before in the room.

use std::collections::HashMap;

use ruma::{OwnedUserId, UserId};

use crate::{room::decide::Speaker, storage::LogRow};

/// How a person is named to the model: `Bob (@bob:example.org)`.
pub(crate) fn person(names: &HashMap<OwnedUserId, String>, user: &UserId) -> String {
    match names.get(user) {
        Some(name) if name != user.as_str() => format!("{name} ({user})"),
        _ => user.to_string(),
    }
}

/// What the model reads as the person's message: in a group or from someone other than the
/// owner, who says it, and (in a group) what was said before in the room.
pub(crate) fn compose_input(
    text: &str,
    sender: &UserId,
    speaker: Speaker,
    group: bool,
    log: &[LogRow],
    names: &HashMap<OwnedUserId, String>,
) -> String {
    if !group && speaker == Speaker::Owner {
        return text.to_owned();
    }
    let mut input = String::new();
    if group && !log.is_empty() {
        input.push_str("Recent messages in this room, oldest first:\n");
        for row in log {
            let body = row.body.replace('\n', "\n  ");
            input.push_str(&format!("- {}: {body}\n", person(names, &row.sender)));
        }
        input.push('\n');
    }
    input.push_str(&format!(
        "Message to you from {}:\n{text}",
        person(names, sender)
    ));
    input
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn group_input_names_who_said_what() {
        let names: HashMap<OwnedUserId, String> = [
            (ruma::owned_user_id!("@bob:x"), "Bob".to_owned()),
            (ruma::owned_user_id!("@carol:x"), "Carol".to_owned()),
        ]
        .into();
        let log = vec![
            LogRow {
                event_id: ruma::owned_event_id!("$1"),
                sender: ruma::owned_user_id!("@bob:x"),
                body: "lunch at noon?".into(),
                ts: 0,
            },
            LogRow {
                event_id: ruma::owned_event_id!("$2"),
                sender: ruma::owned_user_id!("@dave:x"),
                body: "fine\nby me".into(),
                ts: 0,
            },
        ];
        insta::assert_snapshot!(compose_input(
            "what do you think?",
            ruma::user_id!("@carol:x"),
            Speaker::Other,
            true,
            &log,
            &names
        ));
        assert_eq!(
            compose_input(
                "hi",
                ruma::user_id!("@alice:x"),
                Speaker::Owner,
                false,
                &log,
                &names
            ),
            "hi"
        );
        assert_eq!(
            compose_input(
                "hi",
                ruma::user_id!("@bob:x"),
                Speaker::Other,
                false,
                &[],
                &names
            ),
            "Message to you from Bob (@bob:x):\nhi"
        );
    }
}
