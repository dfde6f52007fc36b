-- matrix-os storage, PostgreSQL flavour: the event pipeline. Keep in step with
-- ../sqlite/0006_pipeline.sql.

-- The room of an inbox event (NULL for encryption data and for events without a room): the
-- reader leaves a busy room's events in the inbox and reads them again, by room, once that
-- room's queue has space (back pressure without holding them in memory).
ALTER TABLE inbox ADD COLUMN room_id TEXT;
CREATE INDEX inbox_room ON inbox (room_id, id);
-- Events left in the inbox by an earlier version (every row passed the intake's JSON check).
UPDATE inbox SET room_id = (event::json ->> 'room_id') WHERE kind = 'event';

-- One row per turn a twin ran for an event, written in the same database transaction as the
-- turn's session messages: a turn is never run twice, and its reply (and the requests of its
-- tools) are carried out from here after a crash or a failed send.
CREATE TABLE turns (
    twin_id       TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    room_id       TEXT    NOT NULL,
    reply         TEXT    NOT NULL,
    requests      TEXT    NOT NULL,
    sent          INTEGER NOT NULL DEFAULT 0 CHECK (sent IN (0, 1)),
    requests_done INTEGER NOT NULL DEFAULT 0 CHECK (requests_done IN (0, 1)),
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (twin_id, event_id)
);
CREATE INDEX turns_created ON turns (created_at);

-- Deadline ticks that failed in a row; past a bound the negotiation is no longer ticked.
ALTER TABLE negotiations ADD COLUMN tick_failures BIGINT NOT NULL DEFAULT 0;

-- Twins that cannot act, with what the homeserver said, until they can again.
CREATE TABLE twin_problems (
    twin_id  TEXT    NOT NULL PRIMARY KEY,
    problem  TEXT    NOT NULL,
    since_ms BIGINT  NOT NULL
);

-- Notices for an owner that could not be delivered yet (no usable DM): sent once there is one.
CREATE TABLE owner_notices (
    twin_id    TEXT    NOT NULL,
    notice_key TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (twin_id, notice_key)
);
