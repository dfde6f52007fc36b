-- matrix-os storage, SQLite flavour: which command decided a held action, so that the
-- same `!ai approve` replayed after a crash runs it (once more, idempotently) instead of being
-- told it was already decided. Keep in step with ../postgres/0009_held_decided_by.sql.
ALTER TABLE held_actions ADD COLUMN decided_by TEXT;
