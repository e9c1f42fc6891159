-- The dashboard and Dagster read "the newest batch of this topic" (its end offsets, for lag):
-- WHERE topic = %s ORDER BY committed_at DESC LIMIT 1. One index probe instead of a backward
-- scan over every other topic's batches.
CREATE INDEX idx_stream_batches_topic_committed ON stream_batches (topic, committed_at DESC);
