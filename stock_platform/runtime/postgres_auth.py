"""Password logins for the local PostgreSQL: the generated passwords, the libpq password files, pg_hba.conf.

The cluster accepts only scram-sha-256 logins. Each role gets a random password
at the first `services up`, kept in libpq password files (pgpass format, mode
0600), one per kind of process, so each holds only the passwords its readers
use: the admin file (every role, the superuser's included) serves the runtime's
own admin connection and the operator's tools; the writers' file holds only the
platform role, the dashboard's only the read-only role. Processes name their
file in PGPASSFILE: no DSN, command line or log line carries a password.
Passwords reach the server as SCRAM verifiers computed here, never in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import psycopg2.extensions

from stock_platform.config_passfile import LOCAL_HOSTS

__all__ = [
    "HBA_CONF",
    "READER_ROLE",
    "SUPERUSER",
    "as_role",
    "ensure_passwords",
    "hba_is_ours",
    "read_passwords",
    "scram_verifier",
    "write_hba",
    "write_passfile",
]

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
# The dashboard's role: SELECT on the platform's tables and nothing else (sql/013_dashboard_reader.sql).
READER_ROLE = "stock_reader"
# libpq asks for a password on every connection, socket or loopback; no `trust`, no `peer`.
HBA_CONF = """\
# stock-platform: every login proves its password (scram-sha-256); the generated passwords are in the
# password files under secrets/ beside this cluster, which the platform's processes name in PGPASSFILE.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""
_SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 7677), as `ALTER ROLE ... PASSWORD` accepts it.

    Sending the verifier instead of the password keeps the clear text out of the server's statement logs.
    The generated passwords are ASCII, for which SASLprep changes nothing.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def read_passwords(passfile: Path) -> dict[str, str]:
    """Role -> password from a password file this module wrote (empty when there is none)."""
    try:
        lines = passfile.read_text().splitlines()
    except FileNotFoundError:
        return {}
    out = {}
    for line in lines:
        fields = line.split(":", 4)
        if len(fields) == 5 and not line.startswith("#"):
            out[fields[3]] = fields[4]
    return out


def write_passfile(passfile: Path, port: int, passwords: Mapping[str, str]) -> None:
    """Write a libpq password file for the local server on `port`: mode 0600 from its first byte, replaced atomically."""
    passfile.parent.mkdir(parents=True, exist_ok=True)
    passfile.parent.chmod(0o700)
    lines = [f"{host}:{port}:*:{role}:{password}" for role, password in passwords.items() for host in LOCAL_HOSTS]
    tmp = passfile.with_name(f".{passfile.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, passfile)


def ensure_passwords(passfile: Path, port: int, roles: list[str], also_from: tuple[Path, ...] = ()) -> dict[str, str]:
    """Each role's password, generating the missing ones; (re)writes `passfile` so it names the current port.

    `passfile` is the master copy; a role it lacks is taken from `also_from` (the narrower files) before a
    new password is made, so a password found only there is kept and the server's roles still match.
    """
    passwords: dict[str, str] = {}
    for source in (*reversed(also_from), passfile):
        passwords.update(read_passwords(source))
    for role in roles:
        if role not in passwords:
            passwords[role] = secrets.token_urlsafe(32)  # no ':' or '\\', which pgpass would need escaped
            logger.info("generated a PostgreSQL password for role %s, kept in %s", role, passfile)
    write_passfile(passfile, port, passwords)
    return passwords


def hba_is_ours(pgdata: Path) -> bool:
    """True when the cluster's pg_hba.conf is the password-only one above (a cluster from before it says `trust`)."""
    try:
        return (pgdata / "pg_hba.conf").read_text() == HBA_CONF
    except FileNotFoundError:
        return False


def write_hba(pgdata: Path) -> None:
    """Replace pg_hba.conf in place (keeping its owner, the `postgres` user); takes effect on reload."""
    with open(pgdata / "pg_hba.conf", "w") as out:
        out.write(HBA_CONF)


def as_role(dsn: str, role: str) -> str:
    """`dsn` logging in as `role` instead, without any password the original carried (libpq finds the role's own)."""
    params = psycopg2.extensions.parse_dsn(dsn)
    params.pop("password", None)
    params["user"] = role
    return psycopg2.extensions.make_dsn(**params)
