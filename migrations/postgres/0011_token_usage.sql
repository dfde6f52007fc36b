-- matrix-os storage, postgres flavour: tokens each turn's model calls used (for budgets and
-- `!ai usage`), and the budget notices already sent to owners (one per twin and period).
-- Keep in step with ../sqlite/0011_token_usage.sql.
CREATE TABLE token_usage (
    twin_id            TEXT   NOT NULL,
    room_id            TEXT   NOT NULL,
    event_id           TEXT   NOT NULL,
    created_at         BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    model_calls        BIGINT NOT NULL,
    PRIMARY KEY (twin_id, event_id)
);
CREATE INDEX token_usage_by_time ON token_usage (twin_id, created_at);

CREATE TABLE budget_notices (
    twin_id    TEXT   NOT NULL,
    period     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (twin_id, period)
);
