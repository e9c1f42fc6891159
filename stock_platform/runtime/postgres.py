"""A PostgreSQL server from Debian's package, in the project's data directory.

`initdb` and `pg_ctl` refuse to run as root, so as root they run as the
`postgres` user that Debian's package creates, which owns the data directory.
Authentication is `trust` on 127.0.0.1 only: this is a one-laptop development
server with no password to leak; deployments set POSTGRES_DSN to their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
from psycopg2 import sql

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.processes import port_open, read_pid, wait_until
from stock_platform.runtime.system_packages import ensure_commands

__all__ = ["PostgresServer"]

logger = logging.getLogger(__name__)

_SERVER_CONF = """
# stock-platform: a local development server on loopback only.
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
max_wal_size = 2GB
"""


def _others_can_traverse(path: Path) -> bool:
    """True when every existing ancestor of `path` lets other users through (the `postgres` user must reach it)."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def cluster_root(data_dir: Path) -> Path:
    """Where the cluster lives: under the data dir, unless running as root in a folder `postgres` cannot reach
    (a checkout under /root, say); then in /var/lib/stock-platform, named after the data dir so each checkout keeps its own."""
    preferred = data_dir / "postgres"
    if os.geteuid() != 0 or _others_can_traverse(data_dir):
        return preferred
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path("/var/lib/stock-platform") / digest / "postgres"


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


class PostgresServer:
    """Start, check and stop the project's own PostgreSQL cluster."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = cluster_root(settings.data_dir)
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "server.log"
        self.port = settings.postgres_port

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str], what: str) -> None:
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            raise ServiceError(
                self.name, f"{what} failed: {(result.stderr or result.stdout).strip()[-500:]}", self.log_file,
                hint=f"read the log, then `stock-platform services down` and `up`; port {self.port} must be free",
            )  # fmt: skip

    def _ensure_installed(self) -> Path:
        if _bin_dir() is None:
            ensure_commands([("/usr/lib/postgresql/no-server", "postgresql")])
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise ServiceError(
                self.name, "no PostgreSQL server binaries under /usr/lib/postgresql", hint="apt-get install postgresql"
            )
        return bin_dir

    def _init_cluster(self, bin_dir: Path) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if not _others_can_traverse(self.root.parent):
            self.root.parent.chmod(self.root.parent.stat().st_mode | stat.S_IXOTH)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        if (self.pgdata / "PG_VERSION").exists():
            return
        logger.info("initialising PostgreSQL cluster in %s", self.pgdata)
        self._run(
            [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"],
            "initdb",
        )
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(_SERVER_CONF)

    def running(self) -> bool:
        """True when our cluster's postmaster is alive."""
        pid = read_pid(self.pgdata / "postmaster.pid")
        return pid is not None and Path(f"/proc/{pid}").exists()

    def healthy(self) -> bool:
        """True when the server accepts a query."""
        try:
            with psycopg2.connect(
                host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
            ) as conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
            return True
        except psycopg2.Error:
            return False

    def start(self) -> None:
        """Initialise the cluster if new, start it, wait until healthy, create the app role and databases."""
        bin_dir = self._ensure_installed()
        self._init_cluster(bin_dir)
        if not self.running():
            if port_open(self.port):
                raise ServiceError(
                    self.name, f"port {self.port} is taken by another program", hint="set POSTGRES_PORT to a free port"
                )
            opts = f"-p {self.port} -k {self.socket_dir}"
            pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-o", opts]
            self._run([*pg_ctl, "-w", "-t", "60", "start"], "pg_ctl start")
        if not wait_until(self.healthy, 60):
            raise ServiceError(
                self.name,
                f"not answering on 127.0.0.1:{self.port} after 60 s",
                self.log_file,
                hint="read the end of the log; `stock-platform services down` then `up`",
            )
        self._bootstrap()

    def _bootstrap(self) -> None:
        """Create the role and databases named by POSTGRES_DSN (plus `dagster`), if the DSN is ours."""
        dsn = urlparse(self.settings.postgres_dsn)
        if dsn.hostname not in {"127.0.0.1", "localhost"} or (dsn.port or 5432) != self.port:
            return
        role = dsn.username or "stock"
        databases = [(dsn.path or "/stock").lstrip("/") or "stock", "dagster"]
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
                for db in databases:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role)))
        finally:
            conn.close()

    def stop(self) -> bool:
        """Stop our cluster (fast shutdown: transactions roll back, nothing committed is lost)."""
        if not self.running():
            return False
        bin_dir = self._ensure_installed()
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop"], "pg_ctl stop")
        return True

    def env(self) -> dict[str, str]:
        """The variables that point a client at this server."""
        return {"POSTGRES_DSN": self.settings.postgres_dsn, "POSTGRES_PORT": str(self.port)}
