-- matrix-os storage, SQLite flavour: actions held for the owner's approval, proposed
-- policy changes, and sessions per audience. Keep in step with ../postgres/0008_approvals.sql.

-- A risky tool call of a turn exposed to others' text (kind 'tool'), or a proposed change of a
-- policy file (kind 'policy'); numbered per twin for `!ai approve <n>` / `!ai confirm <n>`.
-- `cause` (the turn's event and the request's place in it) makes recording it idempotent.
CREATE TABLE held_actions (
    twin_id    TEXT    NOT NULL,
    number     INTEGER  NOT NULL,
    cause      TEXT    NOT NULL,
    room_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    summary    TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending',
    created_at INTEGER  NOT NULL,
    PRIMARY KEY (twin_id, number)
);
CREATE UNIQUE INDEX held_actions_cause ON held_actions (twin_id, cause);

-- One session per audience in a room: what the owner said never reaches a public turn's
-- history. Sessions from before are the owner's.
ALTER TABLE sessions ADD COLUMN audience TEXT NOT NULL DEFAULT 'owner';
DROP INDEX sessions_current;
CREATE UNIQUE INDEX sessions_current ON sessions (room_id, twin_id, audience) WHERE is_current = 1;
