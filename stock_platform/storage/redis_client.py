"""Building Redis clients the same way everywhere (producer heartbeat, stream sink, sensors, dashboard, launcher).

Every client gets explicit socket and connect timeouts and one short retry
policy. redis-py's own default depends on how a client is built:
`Redis(host=...)` retries a failed command ten times with an exponential
backoff of up to a second (about four seconds against a closed port with
redis-py 8), which a Spark task would pay on every batch and a sensor tick on
every read while Redis is down; `Redis.from_url` does not retry at all. Redis
is a cache and a liveness board here, and every caller already copes with a
failed call (the sink refills later, a heartbeat beats again in a few
seconds), so a call is retried once, at once, on a new connection: that
covers a connection that broke under a command (a Redis restart, a dropped
route), while a Redis that is down costs at most two connect timeouts. (A
pooled connection the server closed while idle is replaced when it is taken
from the pool, before any command.)
"""

from __future__ import annotations

import logging

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["CONNECT_TIMEOUT_S", "HEALTH_CHECK_INTERVAL_S", "RETRIES", "SOCKET_TIMEOUT_S", "redis_client", "retry_policy"]

logger = logging.getLogger(__name__)

# Connecting to a local or same-network Redis takes milliseconds; two seconds only allows for a busy host.
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 2.0
# Retries of a command that failed on a connection or timeout error (one: a stale pooled connection).
RETRIES = 1
# A pooled connection idle this long is PINGed before use, so a dropped one is found before a command needs it.
HEALTH_CHECK_INTERVAL_S = 30


def retry_policy() -> Retry:
    """The platform's retry policy: `RETRIES` immediate retries on connection and timeout errors."""
    return Retry(NoBackoff(), RETRIES, supported_errors=(redis.ConnectionError, redis.TimeoutError))


def redis_client(
    url: str,
    *,
    socket_timeout: float = SOCKET_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    decode_responses: bool = True,
) -> redis.Redis:
    """A client for `url` (it pools its own connections) with the platform's timeouts and retry policy.

    Responses are decoded to `str` by default: every platform key holds text.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        decode_responses=decode_responses,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=retry_policy(),
    )
