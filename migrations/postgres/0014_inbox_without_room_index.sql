-- matrix-os storage, PostgreSQL flavour. Keep in step with ../sqlite/0014_inbox_without_room_index.sql.

-- The inbox reader lists the ids of a parked room's events itself: the index by room cost every
-- ack a write of one index page per room of the transaction, and is no longer read.
DROP INDEX IF EXISTS inbox_room;
