-- Why a record that is not a row of stock_prices is where it is. Every Kafka record ends in exactly one of
-- stock_prices or dead_letters (an exact copy of a stored quote is counted as a duplicate, not kept twice):
--   contract   the message broke the contract (stock_platform.quotes), reason names the field and the rule;
--   database   the contract accepted it but PostgreSQL refused it; reason is PostgreSQL's error;
--   conflict   same (symbol, event_time) as a stored quote but different market data: the first one stays;
--   closed_day its (symbol, day) was compacted (raw ticks removed after verification): candles and daily bars
--              are final, so adding it again would count it twice.
ALTER TABLE dead_letters
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'contract'
        CONSTRAINT dead_letters_kind_check CHECK (kind IN ('contract', 'database', 'conflict', 'closed_day'));

-- Tens of millions of rows an hour exhaust a 32-bit id in days. This rewrites the table under an exclusive
-- lock: on a large existing table, stop the stream job while it runs (its tasks give up after lock_timeout).
ALTER TABLE stock_prices ALTER COLUMN id TYPE BIGINT;
ALTER SEQUENCE stock_prices_id_seq AS BIGINT;

-- Set by compaction when it removes a (symbol, day)'s verified raw ticks: from then on the stream job refuses
-- ticks of that symbol and day (kind 'closed_day') instead of adding them to candles a second time.
-- Days compacted before this column existed are closed too: verified bars whose raw ticks are gone.
ALTER TABLE stock_daily_bars ADD COLUMN ticks_removed_at TIMESTAMP;
UPDATE stock_daily_bars b SET ticks_removed_at = b.built_at
WHERE b.verified AND NOT EXISTS (
    SELECT 1 FROM stock_prices p
    WHERE p.symbol = b.symbol AND p.event_time >= b.day AND p.event_time < b.day + 1
);
