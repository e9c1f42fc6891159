"""The Streamlit market view and its queries.

Run it with `stock-platform dashboard [--port P]` (DASHBOARD_PORT, default 8501).
Four pages (`views/`): market overview (`/`), symbol view (`/symbol?symbol=AAPL`),
compare (`/compare`) and pipeline health (`/health`).

Where the data comes from:
- `hot.py`: Redis hot data written by the stream job (`RedisKeys`: `latest:*`,
  `ticks:*`), one pipelined round trip per read, and the heartbeats of the
  stream and of every producer (`storage.heartbeats`).
- `queries.py`, `health_queries.py`: PostgreSQL (`stock_prices`,
  `stock_candles_1m`, `stock_daily_bars`, `stream_batches`, `dead_letters`),
  parameterised SQL on the existing indexes, cached for two seconds (`cache.py`).
- `health.py`: green/amber/red thresholds, Kafka lag (broker end offsets minus
  `stream_batches.end_offsets`), Dagster runs over GraphQL when reachable.

Every data call raises `connections.DataUnavailable` when its service is down;
pages turn it into a banner, never a traceback. PostgreSQL is read through
read-only sessions with statement and lock timeouts (`connections.py`); with
DASHBOARD_PASSWORD set, no page runs before the visitor gives it (`login.py`).
"""
