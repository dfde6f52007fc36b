-- matrix-os storage, PostgreSQL flavour. Keep in step with ../sqlite/0001_initial.sql.
-- Times are Unix milliseconds (BIGINT); booleans are INTEGER 0/1 (same code path as SQLite).

-- Appservice transaction ids already recorded: a repeated txnId is answered without storing again.
CREATE TABLE transactions (
    txn_id      TEXT   NOT NULL PRIMARY KEY,
    event_count BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX transactions_received_at ON transactions (received_at);

-- Events waiting to be handled, in arrival order. A handled event is deleted.
-- Writers serialise on an advisory lock, so ids are handed out in commit order.
CREATE TABLE inbox (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id TEXT   NOT NULL,
    event  TEXT   NOT NULL
);

CREATE TABLE twins (
    twin_id      TEXT    NOT NULL PRIMARY KEY,
    owner_id     TEXT    NOT NULL,
    registered   INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1)),
    display_name TEXT,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX twins_owner ON twins (owner_id);

CREATE TABLE memberships (
    room_id    TEXT   NOT NULL,
    twin_id    TEXT   NOT NULL,
    membership TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, twin_id)
);

-- One conversation of one twin in one room; at most one current session per (room, twin).
CREATE TABLE sessions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    TEXT    NOT NULL,
    twin_id    TEXT    NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 1 CHECK (is_current IN (0, 1)),
    next_seq   BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX sessions_current ON sessions (room_id, twin_id) WHERE is_current = 1;

CREATE TABLE session_messages (
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
