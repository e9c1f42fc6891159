-- Daily OHLCV bars per symbol, built by the Dagster daily compaction from the 1-minute candles.
CREATE TABLE stock_daily_bars (
    symbol VARCHAR(10) NOT NULL,
    day DATE NOT NULL,
    open DECIMAL(10, 2) NOT NULL,
    high DECIMAL(10, 2) NOT NULL,
    low DECIMAL(10, 2) NOT NULL,
    close DECIMAL(10, 2) NOT NULL,
    volume BIGINT NOT NULL DEFAULT 0,
    trade_count INTEGER NOT NULL,
    candle_count INTEGER NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    built_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    PRIMARY KEY (symbol, day)
);
CREATE INDEX idx_daily_bars_day ON stock_daily_bars (day DESC);
