-- Tables the streaming job writes beside stock_prices.

-- Where every (symbol, event_time) row came from: lets tests and the chaos suite
-- count quotes by producer and sequence number. Nullable: rows written by older
-- code or other tools stay valid.
ALTER TABLE stock_prices
    ADD COLUMN prev_close DECIMAL(10, 2),
    ADD COLUMN source VARCHAR(16),
    ADD COLUMN producer_id VARCHAR(64),
    ADD COLUMN seq BIGINT;

-- Records that broke the message contract, with the reason; never dropped silently.
CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset BIGINT NOT NULL,
    kafka_timestamp TIMESTAMP,
    message_key TEXT,
    raw_payload BYTEA,
    reason TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (topic, kafka_partition, kafka_offset)
);
CREATE INDEX idx_dead_letters_received ON dead_letters (received_at DESC);

-- One row per committed micro-batch: offsets covered and what happened to the rows.
CREATE TABLE stream_batches (
    query_id TEXT NOT NULL,
    batch_id BIGINT NOT NULL,
    topic TEXT NOT NULL,
    start_offsets JSONB NOT NULL,
    end_offsets JSONB NOT NULL,
    rows_in INTEGER NOT NULL,
    inserted INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    dead_letters INTEGER NOT NULL,
    duration_ms INTEGER,
    committed_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    PRIMARY KEY (query_id, batch_id)
);
CREATE INDEX idx_stream_batches_committed ON stream_batches (committed_at DESC);

-- 1-minute OHLCV candles, upserted from the rows each batch inserts.
-- first/last event times keep open and close right when ticks arrive late.
CREATE TABLE stock_candles_1m (
    symbol VARCHAR(10) NOT NULL,
    minute TIMESTAMP NOT NULL,
    open DECIMAL(10, 2) NOT NULL,
    high DECIMAL(10, 2) NOT NULL,
    low DECIMAL(10, 2) NOT NULL,
    close DECIMAL(10, 2) NOT NULL,
    volume BIGINT NOT NULL DEFAULT 0,
    trade_count INTEGER NOT NULL,
    first_event_time TIMESTAMP NOT NULL,
    last_event_time TIMESTAMP NOT NULL,
    PRIMARY KEY (symbol, minute)
);
CREATE INDEX idx_candles_minute ON stock_candles_1m (minute DESC);
