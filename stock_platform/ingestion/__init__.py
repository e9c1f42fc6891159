"""Quotes enter here: Finnhub REST and WebSocket clients, the simulated market, replay, and the Kafka producer.

Public pieces (import them from their modules; this package imports nothing):
- `producer.QuoteProducer(settings, stats)`: `send(quote)` stamps producer_id and seq (1, 2, ...) and
  publishes keyed by symbol; `flush()`, `close()`. Its buffers and stop timeout are `limits.ProducerLimits`;
  whatever it cannot deliver is counted in `stats.FeedStats` (failed, dropped, unsent) with its seq.
- `simulator.SimulatedMarket(symbols, seed, rate, start_ms=...)`: a seeded iterator of `Quote`s;
  `simulator.synthetic_symbols(n)` for load tests.
- `tape.TapeWriter` / `tape.read_tape`: gzip JSON-lines tapes.
- `fake_finnhub.FakeFinnhub`: a scriptable local Finnhub (REST + WebSocket) for tests and demos.
- `run.run_produce(settings, ProduceOptions(...))`: what `stock-platform produce` runs.

Record shapes on the topic: trade-shaped records (WebSocket trades, most simulator records) have no
day_high/day_low/open_price/prev_close and `volume` = that trade's shares; snapshot-shaped records
(REST quotes, every 5th simulator record of a symbol) carry the day fields and `volume` = the day's
running volume (None for REST when no trade stream ran).
"""
