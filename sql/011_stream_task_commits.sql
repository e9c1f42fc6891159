-- One row per Spark task that wrote a share of a micro-batch: the Kafka offsets it covered and what it did.
-- A task writes its rows and this row in one transaction, so a task that Spark runs again (a retry, a lost
-- executor, a batch replayed from the checkpoint) finds its row and writes nothing twice. The counts are kept
-- so that the re-run reports what the first run did, and the driver's stream_batches row stays exact.
CREATE TABLE stream_task_commits (
    query_id TEXT NOT NULL,
    batch_id BIGINT NOT NULL,
    topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    start_offset BIGINT NOT NULL,
    end_offset BIGINT NOT NULL,
    rows_in INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    dead_letters INTEGER NOT NULL DEFAULT 0,
    candles INTEGER NOT NULL DEFAULT 0,
    committed_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    PRIMARY KEY (query_id, batch_id, topic, kafka_partition, start_offset)
);
-- Retention: compaction removes rows older than the raw-tick window, oldest first.
CREATE INDEX idx_stream_task_commits_committed ON stream_task_commits (committed_at);
