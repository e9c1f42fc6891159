"""A PostgreSQL server from Debian's package, in the project's data directory.

`initdb` and `pg_ctl` refuse to run as root, so as root they run as the
`postgres` user that Debian's package creates, which owns the data directory.
Every login needs a password (scram-sha-256), generated at the first start
(`postgres_auth`). The admin file, holding the superuser's password, lives in
`secrets/` beside the cluster, so the two are kept or removed together even
when the cluster sits outside the data dir; the writers' and the dashboard's
files, one role each, live in `<data dir>/secrets/` and are rewritten from it
on every start. A cluster that still trusts local logins is converted on its
next start. Deployments set POSTGRES_DSN to their own server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from stock_platform.config import Settings
from stock_platform.config_passfile import dsn_is_local
from stock_platform.runtime import postgres_auth as auth
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.processes import port_open, read_pid
from stock_platform.runtime.system_packages import ensure_commands
from stock_platform.storage.postgres import connect

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
        # Every role's password: only this runtime's admin connection and the operator's tools read it.
        self.admin_passfile = self.root.parent / "secrets" / "admin.pgpass"
        # Only the platform role's line: what the writing programs (and Spark's executors) may know.
        self.passfile = settings.postgres_passfile
        # Only the read-only role's line: what the dashboard process may know.
        self.dashboard_passfile = settings.postgres_passfile.with_name("dashboard.pgpass")

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

    def _init_cluster(self, bin_dir: Path, superuser_password: str) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if not _others_can_traverse(self.root.parent):
            self.root.parent.chmod(self.root.parent.stat().st_mode | stat.S_IXOTH)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        if (self.pgdata / "PG_VERSION").exists():
            return
        logger.info("initialising PostgreSQL cluster in %s", self.pgdata)
        # initdb reads the superuser's password from a file (never a command line); as root, that file must belong to
        # `postgres`, who cannot reopen a pipe of ours (/dev/stdin); it lives only as long as initdb runs.
        pwfile = self.root / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(superuser_password + "\n")
        try:
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres", "postgres")
            initdb = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", auth.SUPERUSER, f"--pwfile={pwfile}"]
            self._run([*initdb, "--auth=scram-sha-256", "-E", "UTF8", "--no-locale"], "initdb")
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(_SERVER_CONF)
        auth.write_hba(self.pgdata)

    def _admin(self) -> psycopg2.extensions.connection:
        """An autocommit superuser connection, its password read from the admin password file."""
        passfile = str(self.admin_passfile)
        conn = connect(
            "", "stock-platform-admin", 2, host="127.0.0.1", port=self.port, user=auth.SUPERUSER, dbname="postgres",
            passfile=passfile,
        )  # fmt: skip
        conn.autocommit = True
        return conn

    def _probe(self) -> str | None:
        """None when the server answers a query as the superuser, else the first line of why not."""
        try:
            conn = self._admin()
        except psycopg2.Error as e:
            return (str(e).strip().splitlines() or [type(e).__name__])[0]
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            return None
        finally:
            conn.close()

    def running(self) -> bool:
        """True when our cluster's postmaster is alive."""
        pid = read_pid(self.pgdata / "postmaster.pid")
        return pid is not None and Path(f"/proc/{pid}").exists()

    def healthy(self) -> bool:
        """True when the server accepts a query (as the superuser, with the generated password)."""
        return self._probe() is None

    def _wait_healthy(self, timeout_s: float = 60) -> None:
        """Wait until the server answers; a refused password fails at once, since waiting cannot fix it."""
        deadline = time.monotonic() + timeout_s
        while (error := self._probe()) is not None:
            if "password authentication failed" in error:
                raise ServiceError(
                    self.name, f"refuses the superuser password in {self.admin_passfile}", self.log_file,
                    hint=f"the file was replaced or deleted: restore it; or, for new passwords, make every line of "
                    f"{self.pgdata / 'pg_hba.conf'} end in `trust`, then `stock-platform services down` and `up`",
                )  # fmt: skip
            if time.monotonic() >= deadline:
                raise ServiceError(
                    self.name, f"not answering on 127.0.0.1:{self.port} after {timeout_s:.0f} s: {error}", self.log_file,
                    hint="read the end of the log; `stock-platform services down` then `up`",
                )  # fmt: skip
            time.sleep(0.25)

    def start(self) -> None:
        """Initialise the cluster if new, start it, wait until healthy, require passwords, create the roles and databases."""
        bin_dir = self._ensure_installed()
        app = self._app_role()
        roles, narrower = [auth.SUPERUSER, app, auth.READER_ROLE], (self.passfile, self.dashboard_passfile)
        passwords = auth.ensure_passwords(self.admin_passfile, self.port, roles, narrower)
        auth.write_passfile(self.passfile, self.port, {app: passwords[app]})
        auth.write_passfile(self.dashboard_passfile, self.port, {auth.READER_ROLE: passwords[auth.READER_ROLE]})
        self._init_cluster(bin_dir, passwords[auth.SUPERUSER])
        if not self.running():
            if port_open(self.port):
                raise ServiceError(
                    self.name, f"port {self.port} is taken by another program", hint="set POSTGRES_PORT to a free port"
                )
            opts = f"-p {self.port} -k {self.socket_dir}"
            pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-o", opts]
            self._run([*pg_ctl, "-w", "-t", "60", "start"], "pg_ctl start")
        self._wait_healthy()
        self._require_passwords(passwords[auth.SUPERUSER])
        self._bootstrap(passwords)

    def _require_passwords(self, superuser_password: str) -> None:
        """Convert a cluster that still trusts every local login: set the superuser's password, then demand it."""
        if auth.hba_is_ours(self.pgdata):
            return
        conn = self._admin()  # `trust` still lets this in; the password file takes over after the reload
        try:
            with conn.cursor() as cur:
                verifier = auth.scram_verifier(superuser_password)
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(auth.SUPERUSER), sql.Literal(verifier)))
                auth.write_hba(self.pgdata)
                cur.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()
        logger.info("PostgreSQL on port %s now requires passwords (scram-sha-256), kept in %s", self.port, self.admin_passfile)

    def _ours(self) -> bool:
        """True when POSTGRES_DSN names this server (a deployment's own server is left alone)."""
        return dsn_is_local(self.settings.postgres_dsn, self.port)

    def _app_role(self) -> str:
        return psycopg2.extensions.parse_dsn(self.settings.postgres_dsn).get("user") or "stock"

    def _bootstrap(self, passwords: dict[str, str]) -> None:
        """Create the roles and databases named by POSTGRES_DSN (plus `dagster` and the dashboard's reader), if ours.

        The passwords are set on every start, so a role made before passwords were required gets one too.
        """
        if not self._ours():
            return
        role = self._app_role()
        database = psycopg2.extensions.parse_dsn(self.settings.postgres_dsn).get("dbname") or "stock"
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                for name, options in ((role, "LOGIN CREATEDB"), (auth.READER_ROLE, "LOGIN")):
                    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
                    verifier = sql.Literal(auth.scram_verifier(passwords[name]))
                    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), verifier))
                for db in (database, "dagster"):
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
        """The variables that point a client at this server as the platform role; the writers' password file by its path.

        A POSTGRES_DSN naming another server gets no PGPASSFILE, so libpq's own lookup (~/.pgpass) still serves it.
        """
        env = {"POSTGRES_DSN": self.settings.postgres_dsn, "POSTGRES_PORT": str(self.port)}
        if self._ours():
            env["PGPASSFILE"] = str(self.passfile)
        return env

    def dashboard_env(self) -> dict[str, str]:
        """What the dashboard gets instead: the read-only role's DSN and a password file holding only its line."""
        if not self._ours():
            return {}
        return {
            "POSTGRES_DSN": auth.as_role(self.settings.postgres_dsn, auth.READER_ROLE),
            "PGPASSFILE": str(self.dashboard_passfile),
        }
