-- matrix-os storage, postgres flavour: a session's compaction summary, standing in for its messages
-- up to upto_seq in later requests. Keep in step with ../sqlite/0013_session_summaries.sql.
CREATE TABLE session_summaries (
    session_id BIGINT NOT NULL PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    upto_seq   BIGINT NOT NULL,
    summary    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
