-- matrix-os storage, SQLite flavour: which installation this database belongs to. Keep in step
-- with ../postgres/0005_installation.sql.

-- One row: a random id, also written to <encryption.store_dir>/installation, so that the service
-- refuses to run a database and a crypto store of two different installations together.
CREATE TABLE installation (
    id         TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
);
-- At most one row: every row has the same value (0) in this unique index.
CREATE UNIQUE INDEX installation_one_row ON installation ((0));
