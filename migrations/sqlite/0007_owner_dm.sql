-- matrix-os storage, SQLite flavour: the room each twin tells its owner things in. Keep in step
-- with ../postgres/0007_owner_dm.sql.

-- Bound when the room is made (the owner's DM invite, or the twin's own new DM); changed only
-- when the owner says so or the room becomes unusable, never by whoever creates a room that
-- looks like a DM.
CREATE TABLE owner_dm (
    twin_id    TEXT    NOT NULL PRIMARY KEY,
    room_id    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
