-- matrix-os storage, PostgreSQL flavour: group rooms, pairing. Keep in step with
-- ../sqlite/0003_rooms.sql.

-- Members of rooms a twin is in (everyone, not only twins): how many people a room has (a DM
-- or a group) and their display names. Seeded from the homeserver when a twin joins, then
-- kept current from m.room.member events.
CREATE TABLE room_members (
    room_id      TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    membership   TEXT    NOT NULL,
    display_name TEXT,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- Recent text messages of rooms a twin is in, so a group turn sees who said what even when the
-- twin was not addressed. Bounded per room by the service.
CREATE TABLE room_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id   TEXT    NOT NULL,
    event_id  TEXT    NOT NULL,
    sender    TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    ts        BIGINT  NOT NULL,
    UNIQUE (room_id, event_id)
);
CREATE INDEX room_log_room ON room_log (room_id, id);

-- Events the twins sent, with the thread they belong to: a reply to one of them, or a message
-- in such a thread, addresses the twin.
CREATE TABLE twin_events (
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    twin_id     TEXT NOT NULL,
    thread_root TEXT,
    PRIMARY KEY (room_id, event_id)
);
CREATE INDEX twin_events_thread ON twin_events (room_id, thread_root);

-- Strangers asking to talk with a twin: 'pending' until the owner approves or denies.
CREATE TABLE pairings (
    twin_id    TEXT    NOT NULL,
    requester  TEXT    NOT NULL,
    room_id    TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (twin_id, requester)
);
