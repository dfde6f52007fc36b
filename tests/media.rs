//! Photos, files and voice messages, end to end (real Synapse, the service in-process, a real
//! matrix-sdk client with E2EE, the fake model in both wire formats and the fake OpenAI audio
//! endpoints): encrypted attachments are downloaded as the twin and decrypted (hash checked),
//! images reach the model as image input, voice messages are transcribed, the owner's files
//! land in the home and nobody else's do, `send_file` sends a file the other side can open,
//! and broken media gets a notice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "support/env.rs"]
mod env;
#[path = "support/fake_llm.rs"]
mod fake_llm;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/human.rs"]
mod human;
#[path = "support/media.rs"]
mod media;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/synapse.rs"]
mod synapse;

use std::{path::Path, time::Duration};

use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use matrix_os::config::LlmProvider;
use media::PNG;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Alice, her twin, and an encrypted DM between them that the twin has joined.
async fn alice_dm(
    env: &TestEnv,
) -> (
    human::Human,
    matrix_sdk::ruma::OwnedUserId,
    matrix_sdk::Room,
) {
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;
    (alice, twin, room)
}

/// The files of the home's inbox, with their bytes.
fn inbox(home: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(home.join("data/inbox")) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The newest commit message of the home.
fn head_message(home: &Path) -> String {
    let repo = git2::Repository::open(home).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    head.message().unwrap_or_default().to_owned()
}

async fn an_encrypted_image_reaches_the_model_with_its_caption(provider: LlmProvider) {
    let env = TestEnv::start_with(EnvOptions {
        provider,
        ..Default::default()
    })
    .await;
    let (alice, twin, room) = alice_dm(&env).await;
    env.llm.push(Step::text("You paid 12.50."));
    alice
        .send_attachment(
            &room,
            "receipt.png",
            "image/png",
            PNG.to_vec(),
            Some("what did I pay?"),
        )
        .await;
    let answers = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(answers[0].body(), "You paid 12.50.");

    let requests = env.llm.requests();
    assert_eq!(requests.len(), 1);
    let images = requests[0].images();
    assert_eq!(images.len(), 1, "one image in the message");
    assert_eq!(images[0].media_type, "image/png");
    assert_eq!(images[0].data, PNG, "the decrypted bytes, hash checked");
    let text = requests[0].last_user_text();
    assert!(text.contains("what did I pay?"), "the caption: {text}");
    assert!(text.contains("receipt.png"), "its name: {text}");

    // The owner's photo is kept in her home, committed.
    let home = env.home_of("alice");
    let files = inbox(&home);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].0.ends_with("-receipt.png"), "{files:?}");
    assert_eq!(files[0].1, PNG);
    assert!(head_message(&home).contains("data/inbox/"));
    assert!(
        text.contains(&format!("data/inbox/{}", files[0].0)),
        "{text}"
    );

    // The session keeps the words, not the image: the next request carries no image.
    env.llm.push(Step::text("Nothing else."));
    alice.send_text(&room, "anything else?").await;
    alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    let requests = env.llm.requests();
    assert!(requests[1].images().is_empty());
    assert!(!requests[1].body.to_string().contains("base64,"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_image_reaches_the_model_with_its_caption_openai() {
    an_encrypted_image_reaches_the_model_with_its_caption(LlmProvider::Openai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_image_reaches_the_model_with_its_caption_anthropic() {
    an_encrypted_image_reaches_the_model_with_its_caption(LlmProvider::Anthropic).await;
}

fn no_vision(config: &mut matrix_os::config::Config) {
    config.llm.vision = false;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_vision_an_image_is_described_by_name() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(no_vision),
        ..Default::default()
    })
    .await;
    let (alice, twin, room) = alice_dm(&env).await;
    env.llm.push(Step::text("I cannot see it, sorry."));
    alice
        .send_attachment(&room, "cat.png", "image/png", PNG.to_vec(), None)
        .await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let request = &env.llm.requests()[0];
    assert!(request.images().is_empty());
    let text = request.last_user_text();
    assert!(
        text.contains("cat.png") && text.contains("cannot see"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voice_message_is_transcribed_and_answered() {
    let env = TestEnv::start_with(EnvOptions {
        audio: true,
        ..Default::default()
    })
    .await;
    let (alice, twin, room) = alice_dm(&env).await;
    env.llm.transcribe_with("remind me to call mum tomorrow");
    env.llm.push(Step::text("I will remind you."));
    let audio = b"OggS\0\x02voice-bytes-from-element".repeat(20);
    alice.send_voice(&room, audio.clone()).await;
    let answers = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;

    let transcriptions = env.llm.transcriptions();
    assert_eq!(transcriptions.len(), 1);
    assert_eq!(transcriptions[0].bytes, audio, "the decrypted audio");
    assert_eq!(transcriptions[0].model, "whisper-1");
    let text = env.llm.requests()[0].last_user_text();
    assert!(text.contains("remind me to call mum tomorrow"), "{text}");
    // The owner sees what was heard, above the answer.
    let body = answers[0].body();
    assert!(body.contains("remind me to call mum tomorrow"), "{body}");
    assert!(body.contains("I will remind you."), "{body}");
    // A voice message is not kept as a file.
    assert!(inbox(&env.home_of("alice")).is_empty());
    // No spoken reply unless the owner asked for them.
    assert!(env.llm.speeches().is_empty());

    // Asked for: the answer also comes spoken, as a voice message.
    alice.send_text(&room, "!ai voice on").await;
    let answers = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert!(
        answers[1].body().contains("spoken reply too"),
        "{}",
        answers[1].body()
    );
    let settings = std::fs::read_to_string(env.home_of("alice").join("system/settings.toml"));
    assert!(settings.unwrap().contains("voice_replies = true"));
    env.llm.transcribe_with("and buy milk");
    env.llm.push(Step::text("Milk is on the list."));
    let spoken = b"OggS\0fake-opus-reply".repeat(8);
    env.llm.speak_with(spoken.clone());
    alice.send_voice(&room, audio.clone()).await;
    let answers = alice.wait_for_messages_from(&room, &twin, 4, WAIT).await;
    let speeches = env.llm.speeches();
    assert_eq!(speeches.len(), 1, "{speeches:?}");
    assert_eq!(speeches[0]["input"], json!("Milk is on the list."));
    let voice = answers
        .iter()
        .find(|m| m.msgtype() == "m.audio")
        .expect("a voice reply");
    assert!(voice.json["content"]["org.matrix.msc3245.voice"].is_object());
    assert!(
        voice.json["content"]["file"].is_object(),
        "encrypted attachment"
    );
    assert_eq!(alice.download(voice).await, spoken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_transcription_service_the_twin_says_it_cannot_listen() {
    let env = TestEnv::start().await;
    let (alice, twin, room) = alice_dm(&env).await;
    alice.send_voice(&room, b"OggS\0voice".repeat(10)).await;
    let answers = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert!(
        answers[0].body().contains("cannot listen"),
        "{}",
        answers[0].body()
    );
    assert!(env.llm.requests().is_empty(), "no model call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owners_file_lands_in_the_inbox_and_a_strangers_does_not() {
    let env = TestEnv::start().await;
    let (alice, twin, room) = alice_dm(&env).await;
    let home = env.home_of("alice");
    let notes = b"- buy milk\n- call mum\n".to_vec();
    env.llm.push(Step::text("Two things to do."));
    alice
        .send_attachment(&room, "todo.md", "text/markdown", notes.clone(), None)
        .await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let files = inbox(&home);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].0.ends_with("-todo.md"));
    assert_eq!(files[0].1, notes);
    assert!(head_message(&home).contains("todo.md"));
    let text = env.llm.requests()[0].last_user_text();
    assert!(text.contains("buy milk"), "its text is shown: {text}");
    assert!(text.contains("data/inbox/"), "and where it is: {text}");

    // Bob may talk to the twin; his file is read in his own turn and never saved.
    let bob = env.human("bob").await;
    env.write_home_file(
        "alice",
        "system/access.toml",
        &format!("dm = [\"{}\"]\n", bob.user_id),
    );
    let bob_room = bob.create_dm(&twin, true).await;
    bob.wait_for_join(&bob_room, &twin, WAIT).await;
    env.llm.push(Step::text("Thanks, Bob."));
    bob.send_attachment(
        &bob_room,
        "bobs-plan.md",
        "text/markdown",
        b"BOB-FILE-7781 take over alice".to_vec(),
        None,
    )
    .await;
    bob.wait_for_messages_from(&bob_room, &twin, 1, WAIT).await;
    assert_eq!(inbox(&home).len(), 1, "nothing of Bob's is saved");
    // No file of the home holds it but the record of Bob's own conversation.
    for entry in walk(&home) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let path = entry.to_string_lossy();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("BOB-FILE-7781")
                || path.contains("/system/sessions/"),
            "Bob's file reached {entry:?}"
        );
    }
    let request = env.llm.requests().last().unwrap().clone();
    let text = request.last_user_text();
    assert!(text.contains("BOB-FILE-7781"), "read in his turn: {text}");
    assert!(!text.contains("data/inbox"), "{text}");
    // Bob's images are shown to the model in his own turn only.
    env.llm.push(Step::text("Nice picture."));
    bob.send_attachment(&bob_room, "bob.png", "image/png", PNG.to_vec(), None)
        .await;
    bob.wait_for_messages_from(&bob_room, &twin, 2, WAIT).await;
    assert_eq!(env.llm.requests().last().unwrap().images().len(), 1);
    assert_eq!(inbox(&home).len(), 1, "nothing of Bob's is saved");
}

/// A one-page PDF with a text layer (see `tests/data/media/README.md`).
const INVOICE_PDF: &[u8] = include_bytes!("data/media/invoice.pdf");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owners_pdf_is_read_as_text_and_kept_for_the_file_tools() {
    let env = TestEnv::start().await;
    let (alice, twin, room) = alice_dm(&env).await;
    let home = env.home_of("alice");
    env.llm
        .push(Step::text("99 EUR, due at the end of the month."));
    alice
        .send_attachment(
            &room,
            "invoice.pdf",
            "application/pdf",
            INVOICE_PDF.to_vec(),
            Some("how much is it?"),
        )
        .await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let text = env.llm.requests()[0].last_user_text();
    assert!(
        text.contains("Invoice 4711: total 99 EUR"),
        "its text: {text}"
    );
    assert!(text.contains("how much is it?"), "the caption: {text}");
    let files = inbox(&home);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].1, INVOICE_PDF);
    let saved = format!("data/inbox/{}", files[0].0);
    assert!(text.contains(&saved), "{text}");

    // Later, the file tools read it as text.
    env.llm
        .push(Step::tool_call("read_file", json!({ "path": saved })));
    env.llm.push(Step::EchoToolResults);
    alice.send_text(&room, "when is the invoice due?").await;
    let answers = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert!(
        answers[1].body().contains("due 2026-12-31"),
        "{}",
        answers[1].body()
    );
}

/// Every file of the home but its git folder.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap()) {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_file_arrives_decryptable_with_the_same_bytes() {
    let env = TestEnv::start().await;
    let (alice, twin, room) = alice_dm(&env).await;
    let report: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let home = env.home_of("alice");
    std::fs::create_dir_all(home.join("data")).unwrap();
    std::fs::write(home.join("data/report.pdf"), &report).unwrap();
    std::fs::write(home.join("data/chart.png"), PNG).unwrap();
    env.llm.push(Step::tool_call(
        "send_file",
        json!({"path": "data/report.pdf", "caption": "the Q3 report"}),
    ));
    env.llm.push(Step::tool_call(
        "send_file",
        json!({"path": "data/chart.png"}),
    ));
    env.llm.push(Step::text("Here they are."));
    alice
        .send_text(&room, "send me the report and the chart")
        .await;
    let seen = alice.wait_for_messages_from(&room, &twin, 3, WAIT).await;

    let file = seen
        .iter()
        .find(|m| m.msgtype() == "m.file")
        .expect("the report as m.file");
    assert_eq!(file.kind(), "m.room.message", "decrypted");
    assert!(
        file.json["content"]["file"].is_object(),
        "an encrypted attachment"
    );
    assert!(
        file.json["content"].get("url").is_none(),
        "no plaintext URL"
    );
    assert_eq!(file.file_name(), Some("report.pdf"));
    assert_eq!(file.body(), "the Q3 report", "the caption");
    assert_eq!(alice.download(file).await, report);
    let image = seen
        .iter()
        .find(|m| m.msgtype() == "m.image")
        .expect("the chart as m.image");
    assert_eq!(alice.download(image).await, PNG);
    assert!(seen.iter().any(|m| m.body() == "Here they are."));
    // On the wire, all of it is encrypted.
    let raw = env.raw_events(&alice, &room).await;
    assert!(
        raw.iter()
            .filter(|e| e["sender"] == json!(twin.as_str()))
            .filter(|e| e["type"] == json!("m.room.message"))
            .count()
            == 0,
        "nothing sent in the clear"
    );
}

fn tiny_downloads(config: &mut matrix_os::config::Config) {
    config.media.max_bytes = 4_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampered_and_oversized_attachments_get_a_notice_and_are_not_saved() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(tiny_downloads),
        ..Default::default()
    })
    .await;
    let (alice, twin, room) = alice_dm(&env).await;
    let home = env.home_of("alice");

    alice
        .send_tampered_file(
            &room,
            "contract.txt",
            "text/plain",
            b"I owe Eve 1000 EUR".to_vec(),
        )
        .await;
    let seen = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert!(
        seen[0].body().contains("do not match its hash"),
        "{}",
        seen[0].body()
    );
    assert_eq!(seen[0].msgtype(), "m.notice");
    assert!(inbox(&home).is_empty(), "nothing saved");
    assert!(env.llm.requests().is_empty(), "no model call");

    alice
        .send_attachment(
            &room,
            "big.bin",
            "application/octet-stream",
            vec![7u8; 10_000],
            None,
        )
        .await;
    let seen = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert!(seen[1].body().contains("larger than"), "{}", seen[1].body());
    assert!(inbox(&home).is_empty());

    // Something that says it is an image but is not one.
    alice
        .send_attachment(
            &room,
            "x.png",
            "image/png",
            b"<svg>not a png</svg>".to_vec(),
            None,
        )
        .await;
    let seen = alice.wait_for_messages_from(&room, &twin, 3, WAIT).await;
    assert!(seen[2].body().contains("cannot use"), "{}", seen[2].body());
    assert!(inbox(&home).is_empty());

    // Media the homeserver does not have (deleted, or never there).
    room.send_raw(
        "m.room.message",
        json!({"msgtype": "m.file", "body": "gone.txt",
               "url": format!("mxc://{}/NoSuchMediaHere", env.server_name()),
               "info": {"mimetype": "text/plain", "size": 12}}),
    )
    .await
    .unwrap();
    let seen = alice.wait_for_messages_from(&room, &twin, 4, WAIT).await;
    assert!(seen[3].body().contains("refused"), "{}", seen[3].body());
    assert!(inbox(&home).is_empty());
    assert!(
        env.llm.requests().is_empty(),
        "no model call for broken media"
    );

    // The room goes on.
    env.llm.push(Step::text("Still here."));
    alice.send_text(&room, "hello?").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 5, WAIT).await;
    assert_eq!(seen[4].body(), "Still here.");
}
