"""A Redis server from Debian's package, in the project's data directory."""

from __future__ import annotations

import logging
import subprocess

import redis

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.processes import pid_alive, port_open, read_pid, stop_pid, wait_until
from stock_platform.runtime.system_packages import ensure_commands
from stock_platform.storage.redis_client import redis_client

__all__ = ["RedisServer"]

logger = logging.getLogger(__name__)


class RedisServer:
    """Start, check and stop the project's own Redis (append-only file on, loopback only)."""

    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir / "redis"
        self.pid_file = self.root / "redis.pid"
        self.log_file = settings.data_dir / "logs" / "redis.log"
        self.port = settings.redis_port

    def running(self) -> bool:
        """True when the Redis we started is alive."""
        return pid_alive(read_pid(self.pid_file))

    def healthy(self) -> bool:
        """True when Redis answers PING."""
        try:
            client = redis_client(f"redis://127.0.0.1:{self.port}/0", socket_timeout=1, connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Start Redis daemonised with its pid file, then wait for PING."""
        ensure_commands([("redis-server", "redis-server")])
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.running():
            if port_open(self.port):
                raise ServiceError(
                    self.name, f"port {self.port} is taken by another program", hint="set REDIS_PORT to a free port"
                )
            argv = [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--daemonize", "yes", "--pidfile", str(self.pid_file), "--logfile", str(self.log_file),
                "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
            ]  # fmt: skip
            result = subprocess.run(argv, capture_output=True, text=True)  # noqa: S603
            if result.returncode != 0:
                raise ServiceError(
                    self.name,
                    f"redis-server failed: {result.stderr.strip()[-300:]}",
                    self.log_file,
                    hint="check that `redis-server` is installed (apt-get install redis-server) and the data dir is writable",
                )
        if not wait_until(self.healthy, 30):
            raise ServiceError(
                self.name,
                f"not answering PING on 127.0.0.1:{self.port} after 30 s",
                self.log_file,
                hint="read the end of the log; `stock-platform services down` then `up`",
            )

    def stop(self) -> bool:
        """Stop the Redis we started (SIGTERM makes it flush the append-only file)."""
        return stop_pid(read_pid(self.pid_file), group=False)

    def env(self) -> dict[str, str]:
        """The variables that point a client at this server."""
        return {"REDIS_URL": self.settings.redis_url, "REDIS_PORT": str(self.port)}
