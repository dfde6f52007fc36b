-- matrix-os storage, sqlite flavour: the message a turn's answer is being streamed into (edited
-- while the model writes), so that a turn run again after a crash edits that message instead
-- of answering twice. Keep in step with ../postgres/0012_live_replies.sql.
CREATE TABLE live_replies (
    twin_id    TEXT   NOT NULL,
    event_id   TEXT   NOT NULL,
    room_id    TEXT   NOT NULL,
    message_id TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (twin_id, event_id)
);
