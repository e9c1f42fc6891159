"""PostgreSQL, Redis and Kafka access shared by the producer, the stream job, Dagster, the dashboard and the launcher.

One way to do each thing: `postgres.connect` (name, timeouts, keepalives), `redis_client.redis_client`
(timeouts, a short retry policy), `kafka_offsets.end_offsets`, `heartbeats` (keys, beats, the stale rule),
`redis_keys` (the key layout), `stream_offsets` (the stream's committed position), `migrations`.
"""
