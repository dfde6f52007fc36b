-- matrix-os storage, postgres flavour: rooms a trusted mautrix bridge bot marked as portals
-- (m.bridge state it sent itself), and the service members it named. Keep in step with
-- ../sqlite/0010_portals.sql.
CREATE TABLE portals (
    room_id         TEXT   NOT NULL PRIMARY KEY,
    bot             TEXT   NOT NULL,
    network         TEXT   NOT NULL,
    network_name    TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    chat_name       TEXT,
    receiver        TEXT,
    service_members TEXT   NOT NULL DEFAULT '[]',
    updated_at      BIGINT NOT NULL
);
