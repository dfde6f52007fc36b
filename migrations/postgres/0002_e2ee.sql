-- matrix-os storage, PostgreSQL flavour: end-to-end encryption. Keep in step with
-- ../sqlite/0002_e2ee.sql.

-- What an inbox item holds: 'event' (a timeline or state event, as before) or 'crypto' (the
-- encryption data of a transaction: to-device messages, device-list changes, one-time-key
-- counts, as one JSON object). Rows stored before this migration are events.
ALTER TABLE inbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'crypto'));

-- Events a twin could not decrypt yet (no room key): kept until the key arrives, never dropped.
-- One row per (twin, event): storing the same event again is a no-op.
CREATE TABLE undecrypted (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    TEXT   NOT NULL,
    twin_id    TEXT   NOT NULL,
    session_id TEXT   NOT NULL,
    event_id   TEXT   NOT NULL,
    event_json TEXT   NOT NULL,
    since_ms   BIGINT NOT NULL,
    UNIQUE (twin_id, event_id)
);
CREATE INDEX undecrypted_session ON undecrypted (room_id, session_id, id);

-- Whether a room is encrypted, as last recorded. Once 1, it stays 1 (see set_room_encrypted).
CREATE TABLE room_encryption (
    room_id    TEXT    NOT NULL PRIMARY KEY,
    encrypted  INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    updated_at BIGINT  NOT NULL
);
