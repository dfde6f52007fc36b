//! `!ai` commands: parsed from a message body (pure), run by the room session.

use ruma::OwnedUserId;

/// The prefix of commands.
pub const PREFIX: &str = "!ai";

/// A command someone gave the twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `!ai help`: what the commands are.
    Help,
    /// `!ai status`: model, room policy, queue, encryption state.
    Status,
    /// `!ai reset`: a new session in this room.
    Reset,
    /// `!ai model [name|default]`: show or change the model (owner only).
    Model(Option<String>),
    /// `!ai leave`: leave this room.
    Leave,
    /// `!ai approve <mxid>`: let a stranger talk with the twin (owner only).
    Approve(OwnedUserId),
    /// `!ai deny <mxid>`: refuse a stranger (owner only).
    Deny(OwnedUserId),
    /// `!ai policy [words...]`: show or change the access policy (owner only to change).
    Policy(Vec<String>),
    /// `!ai meeting accept|decline [id]`: answer a meeting request (owner only).
    Meeting {
        /// Yes or no.
        accept: bool,
        /// Which negotiation (`None`: the only one waiting).
        id: Option<String>,
    },
    /// `!ai meeting cancel <id>`: call off a meeting (agreed or not) (owner only).
    CancelMeeting(String),
    /// `!ai approve <n>`: run held action `n` (owner only, in their DM).
    ApproveHeld(i64),
    /// `!ai deny <n>`: drop held action or proposed change `n` (owner only).
    DenyHeld(i64),
    /// `!ai confirm [n]`: apply proposed policy change `n` (`None`: the only one waiting)
    /// (owner only, in their DM).
    Confirm(Option<i64>),
    /// `!ai bridge answer|read|off`: what the twin does in this bridged chat (owner only).
    Bridge(Vec<String>),
    /// `!ai usage`: tokens used today and this month, with cache hits (owner only).
    Usage,
    /// `!ai budget [daily|monthly <tokens>|off|default]`: show or change the token budget
    /// (owner only).
    Budget(Vec<String>),
    /// `!ai voice on|off`: whether the owner's voice messages also get a spoken reply
    /// (owner only).
    Voice(bool),
    /// `!ai <anything else>`: answered with help.
    Unknown(String),
}

impl Command {
    /// Whether only the owner may run it.
    pub fn owner_only(&self) -> bool {
        match self {
            Self::Model(name) => name.is_some(),
            Self::Policy(words) => !words.is_empty(),
            Self::Approve(_)
            | Self::Deny(_)
            | Self::Reset
            | Self::Leave
            | Self::Meeting { .. }
            | Self::CancelMeeting(_)
            | Self::ApproveHeld(_)
            | Self::DenyHeld(_)
            | Self::Bridge(_)
            | Self::Usage
            | Self::Budget(_)
            | Self::Voice(_)
            | Self::Confirm(_) => true,
            Self::Help | Self::Status | Self::Unknown(_) => false,
        }
    }
}

/// The help text.
pub fn help_text(owner: &str) -> String {
    format!(
        "**Commands** (start with `{PREFIX}`; in {owner}'s DM the prefix is optional):\n\n\
         - `{PREFIX} help`: this list\n\
         - `{PREFIX} status`: model, room policy, queue and encryption state\n\
         - `{PREFIX} reset`: start a new conversation in this room (owner)\n\
         - `{PREFIX} model [name|default]`: show or change the model (owner)\n\
         - `{PREFIX} leave`: leave this room (owner)\n\
         - `{PREFIX} meeting accept|decline [id]`: answer a meeting request from another \
         twin (owner); `{PREFIX} meeting cancel <id>` calls one off (owner)\n\
         - `{PREFIX} approve <@user:server>` / `{PREFIX} deny <@user:server>`: answer a \
         request to talk with me (owner)\n\
         - `{PREFIX} approve <n>` / `{PREFIX} deny <n>`: run or drop something I held for your \
         approval because others could read the room (owner, in our DM)\n\
         - `{PREFIX} confirm [n]`: apply a policy change I proposed (owner, in our DM)\n\
         - `{PREFIX} usage`: tokens used today and this month, with prompt cache hits (owner)\n\
         - `{PREFIX} budget [daily|monthly <tokens>|off|default]`: show or change my token \
         budget (owner)\n\
         - `{PREFIX} voice on|off`: also answer your voice messages with a spoken reply \
         (owner; needs a speech service)\n\
         - `{PREFIX} bridge answer|read|off`, in a bridged chat (Telegram, WhatsApp): answer \
         your contacts there, only read it for you, or neither (owner)\n\
         - `{PREFIX} policy`: show who may talk with me; `{PREFIX} policy room address \
         owner|members|<globs>`, `{PREFIX} policy room unprompted on|off`, `{PREFIX} policy \
         room tools <names>|all|none`, `{PREFIX} policy dm|invite|rooms|bots|blocked|federation \
         add|remove <glob>`, `{PREFIX} policy pairing on|off` (owner)"
    )
}

/// Parses `body` as a command. With `prefix_optional` (the owner's DM) a bare command word is
/// enough, but only when its arguments fit, so that "help me write a letter" stays a message.
pub fn parse(body: &str, prefix_optional: bool) -> Option<Command> {
    let text = body.trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let (first, rest) = words.split_first()?;
    if first.eq_ignore_ascii_case(PREFIX) {
        return Some(parse_words(rest).unwrap_or_else(|| Command::Unknown(rest.join(" "))));
    }
    if prefix_optional {
        return parse_words(&words);
    }
    None
}

/// A command from its words (after the prefix); `None` when they are not a command.
fn parse_words(words: &[&str]) -> Option<Command> {
    let Some((name, args)) = words.split_first() else {
        return Some(Command::Help);
    };
    let name = name.to_ascii_lowercase();
    let user = |args: &[&str]| -> Option<OwnedUserId> {
        match args {
            [one] => OwnedUserId::try_from(*one).ok(),
            _ => None,
        }
    };
    let number = |arg: &str| -> Option<i64> {
        arg.strip_prefix('#')
            .unwrap_or(arg)
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
    };
    match (name.as_str(), args) {
        ("approve", [n]) if number(n).is_some() => number(n).map(Command::ApproveHeld),
        ("deny", [n]) if number(n).is_some() => number(n).map(Command::DenyHeld),
        ("confirm", []) => Some(Command::Confirm(None)),
        ("confirm", [n]) => number(n).map(|n| Command::Confirm(Some(n))),
        ("help", []) => Some(Command::Help),
        ("status", []) => Some(Command::Status),
        ("usage", []) => Some(Command::Usage),
        ("budget", []) => Some(Command::Budget(Vec::new())),
        ("budget", [period, limit]) => Some(Command::Budget(vec![
            (*period).to_owned(),
            (*limit).to_owned(),
        ])),
        ("voice", [switch]) => match switch.to_ascii_lowercase().as_str() {
            "on" => Some(Command::Voice(true)),
            "off" => Some(Command::Voice(false)),
            _ => None,
        },
        ("reset", []) => Some(Command::Reset),
        ("leave", []) => Some(Command::Leave),
        ("model", []) => Some(Command::Model(None)),
        ("model", [model]) => Some(Command::Model(Some((*model).to_owned()))),
        ("approve", args) => user(args).map(Command::Approve),
        ("deny", args) => user(args).map(Command::Deny),
        ("meeting", ["cancel", id]) => Some(Command::CancelMeeting((*id).to_owned())),
        ("meeting", [answer, rest @ ..]) if rest.len() <= 1 => {
            let accept = match answer.to_ascii_lowercase().as_str() {
                "accept" | "yes" => true,
                "decline" | "no" => false,
                _ => return None,
            };
            Some(Command::Meeting {
                accept,
                id: rest.first().map(|id| (*id).to_owned()),
            })
        }
        ("bridge", args) if !args.is_empty() => Some(Command::Bridge(
            args.iter().map(|w| (*w).to_ascii_lowercase()).collect(),
        )),
        ("policy", args) => Some(Command::Policy(
            args.iter().map(|w| (*w).to_owned()).collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_commands_parse() {
        assert_eq!(parse("!ai help", false), Some(Command::Help));
        assert_eq!(parse("  !AI   status ", false), Some(Command::Status));
        assert_eq!(parse("!ai", false), Some(Command::Help));
        assert_eq!(parse("!ai reset", false), Some(Command::Reset));
        assert_eq!(
            parse("!ai model gpt-x", false),
            Some(Command::Model(Some("gpt-x".into())))
        );
        assert_eq!(
            parse("!ai approve @bob:x", false),
            Some(Command::Approve("@bob:x".try_into().unwrap()))
        );
        assert_eq!(
            parse("!ai policy room unprompted on", false),
            Some(Command::Policy(vec![
                "room".into(),
                "unprompted".into(),
                "on".into()
            ]))
        );
    }

    #[test]
    fn unknown_or_malformed_prefixed_commands_get_help() {
        assert_eq!(
            parse("!ai dance now", false),
            Some(Command::Unknown("dance now".into()))
        );
        assert!(matches!(
            parse("!ai approve not-an-id", false),
            Some(Command::Unknown(_))
        ));
        assert!(matches!(
            parse("!ai help me", false),
            Some(Command::Unknown(_))
        ));
    }

    #[test]
    fn bare_words_are_commands_only_in_the_owners_dm_and_only_when_they_fit() {
        assert_eq!(parse("status", true), Some(Command::Status));
        assert_eq!(
            parse("deny @eve:x", true),
            Some(Command::Deny("@eve:x".try_into().unwrap()))
        );
        assert_eq!(parse("status", false), None);
        assert_eq!(parse("help me write a letter", true), None);
        assert_eq!(parse("approve of this plan", true), None);
        assert_eq!(parse("hello", true), None);
        assert_eq!(parse("", true), None);
        assert_eq!(parse("!aix status", false), None);
    }

    #[test]
    fn meeting_answers_parse() {
        assert_eq!(
            parse("!ai meeting accept abc", false),
            Some(Command::Meeting {
                accept: true,
                id: Some("abc".into())
            })
        );
        assert_eq!(
            parse("meeting no", true),
            Some(Command::Meeting {
                accept: false,
                id: None
            })
        );
        assert_eq!(
            parse("!ai meeting cancel n-1", false),
            Some(Command::CancelMeeting("n-1".into()))
        );
        assert!(matches!(
            parse("!ai meeting maybe", false),
            Some(Command::Unknown(_))
        ));
    }

    #[test]
    fn held_actions_are_approved_denied_and_confirmed_by_number() {
        assert_eq!(parse("!ai approve 3", false), Some(Command::ApproveHeld(3)));
        assert_eq!(parse("approve #12", true), Some(Command::ApproveHeld(12)));
        assert_eq!(parse("!ai deny 4", false), Some(Command::DenyHeld(4)));
        assert_eq!(parse("confirm", true), Some(Command::Confirm(None)));
        assert_eq!(
            parse("!ai confirm 2", false),
            Some(Command::Confirm(Some(2)))
        );
        assert!(matches!(
            parse("!ai approve 0", false),
            Some(Command::Unknown(_))
        ));
        assert!(matches!(
            parse("!ai confirm it", false),
            Some(Command::Unknown(_))
        ));
        assert_eq!(parse("confirm my booking", true), None);
        assert!(Command::ApproveHeld(1).owner_only());
        assert!(Command::Confirm(None).owner_only());
    }

    #[test]
    fn voice_parses() {
        assert_eq!(parse("!ai voice on", false), Some(Command::Voice(true)));
        assert_eq!(parse("voice OFF", true), Some(Command::Voice(false)));
        assert_eq!(parse("voice messages are great", true), None);
        assert!(Command::Voice(true).owner_only());
    }

    #[test]
    fn usage_and_budget_parse() {
        assert_eq!(parse("!ai usage", false), Some(Command::Usage));
        assert_eq!(parse("usage", true), Some(Command::Usage));
        assert_eq!(parse("!ai budget", false), Some(Command::Budget(vec![])));
        assert_eq!(
            parse("budget daily 50k", true),
            Some(Command::Budget(vec!["daily".into(), "50k".into()]))
        );
        assert!(matches!(
            parse("!ai budget daily", false),
            Some(Command::Unknown(_))
        ));
        assert_eq!(parse("usage of the car", true), None);
        assert!(Command::Usage.owner_only());
        assert!(Command::Budget(vec![]).owner_only());
    }

    #[test]
    fn owner_only_commands_are_marked() {
        assert!(Command::Approve("@b:x".try_into().unwrap()).owner_only());
        assert!(Command::Model(Some("m".into())).owner_only());
        assert!(!Command::Model(None).owner_only());
        assert!(!Command::Policy(vec![]).owner_only());
        assert!(Command::Policy(vec!["dm".into()]).owner_only());
        assert!(!Command::Help.owner_only());
        assert!(!Command::Status.owner_only());
    }
}
