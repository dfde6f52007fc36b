-- matrix-os storage, PostgreSQL flavour: AI-to-AI negotiations. Keep in step with
-- ../sqlite/0004_negotiations.sql.

-- One twin's side of one negotiation: the pure state machine's state as JSON, persisted after
-- every step so a negotiation survives restarts and outages.
CREATE TABLE negotiations (
    twin_id     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    peer_twin   TEXT,
    room_id     TEXT,
    state       TEXT    NOT NULL,
    deadline_ms BIGINT,
    finished    INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (twin_id, id)
);
CREATE INDEX negotiations_due ON negotiations (finished, deadline_ms);

-- The encrypted room a twin uses with another twin (reused for every negotiation).
CREATE TABLE a2a_rooms (
    twin_id    TEXT    NOT NULL,
    peer_twin  TEXT    NOT NULL,
    room_id    TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (twin_id, peer_twin)
);
