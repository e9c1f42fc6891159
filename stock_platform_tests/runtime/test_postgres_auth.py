"""The local PostgreSQL lets nobody in without a password, keeps its passwords in 0600 files, and converts old clusters.

Each kind of process has a password file holding only its roles: the admin file
(beside the cluster) every role, the writers' file the platform role, the
dashboard's the read-only role. Most tests run a private cluster (own data dir,
own port) so that converting or breaking one never touches the shared server
other tests use; one checks the shared server itself.
"""

from __future__ import annotations

import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from stock_platform.config import Settings
from stock_platform.runtime import postgres_auth as auth
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _connect(port: int, user: str, passfile: Path, host: str = "127.0.0.1") -> psycopg2.extensions.connection:
    """A connection whose only source of a password is `passfile` (an empty or missing file: none at all)."""
    return psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=5, passfile=str(passfile))


def _refused(port: int, user: str, passfile: Path, host: str = "127.0.0.1") -> str:
    with pytest.raises(psycopg2.OperationalError) as refused:
        _connect(port, user, passfile, host).close()
    return str(refused.value)


@pytest.fixture(scope="module")
def private_server(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A new cluster in its own data dir on a free port, started the way `services up` starts one; removed at the end."""
    port = _free_port()
    settings = base_settings.replace(data_dir=tmp_path_factory.mktemp("pg-auth"), postgres_port=port,
        postgres_dsn=f"postgresql://stock@127.0.0.1:{port}/stock",
    )  # fmt: skip
    server = PostgresServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if not server.root.is_relative_to(settings.data_dir):  # as root, the cluster lives in /var/lib/stock-platform
            shutil.rmtree(server.root.parent, ignore_errors=True)


def test_a_new_cluster_refuses_a_login_without_the_password(private_server: PostgresServer, tmp_path: Path) -> None:
    port, nothing = private_server.port, tmp_path / "no-such-pgpass"
    for user in (auth.SUPERUSER, "stock", auth.READER_ROLE):
        assert "no password supplied" in _refused(port, user, nothing)
    # Over the Unix socket too: `local` lines are no back door.
    assert "no password supplied" in _refused(port, auth.SUPERUSER, nothing, host=str(private_server.socket_dir))
    wrong = tmp_path / "wrong.pgpass"
    auth.write_passfile(wrong, port, {auth.SUPERUSER: "not-the-password"})
    assert "password authentication failed" in _refused(port, auth.SUPERUSER, wrong)
    assert "trust" not in (private_server.pgdata / "pg_hba.conf").read_text().replace("# ", "")


def test_each_password_file_logs_in_its_own_roles_and_no_other(private_server: PostgresServer) -> None:
    server = private_server
    files = {server.admin_passfile: (auth.SUPERUSER, "stock", auth.READER_ROLE), server.passfile: ("stock",)}
    files[server.dashboard_passfile] = (auth.READER_ROLE,)
    for passfile, roles in files.items():
        for user in (auth.SUPERUSER, "stock", auth.READER_ROLE):
            if user not in roles:
                assert "no password supplied" in _refused(server.port, user, passfile), (passfile.name, user)
                continue
            conn = _connect(server.port, user, passfile)
            with conn, conn.cursor() as cur:
                cur.execute("SELECT current_user")
                assert cur.fetchone() == (user,)
            conn.close()


def test_the_server_stores_verifiers_not_passwords(private_server: PostgresServer) -> None:
    conn = _connect(private_server.port, auth.SUPERUSER, private_server.admin_passfile)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)", (["postgres", "stock", "stock_reader"],)
        )
        stored = dict(cur.fetchall())
    conn.close()
    passwords = auth.read_passwords(private_server.admin_passfile)
    assert set(stored) == {"postgres", "stock", "stock_reader"}
    for role, verifier in stored.items():
        assert verifier.startswith("SCRAM-SHA-256$4096:") and passwords[role] not in verifier


def test_password_files_are_private_and_each_holds_only_its_roles(private_server: PostgresServer) -> None:
    server = private_server
    for path in (server.admin_passfile, server.passfile, server.dashboard_passfile):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    assert set(auth.read_passwords(server.admin_passfile)) == {auth.SUPERUSER, "stock", auth.READER_ROLE}
    assert set(auth.read_passwords(server.passfile)) == {"stock"}, "no writer may know the superuser's password"
    assert set(auth.read_passwords(server.dashboard_passfile)) == {auth.READER_ROLE}
    # The admin file lives beside the cluster, wherever that is: the two are kept or removed together.
    assert server.admin_passfile.parent == server.root.parent / "secrets"
    env = server.env()
    assert env["PGPASSFILE"] == str(server.passfile)
    for password in auth.read_passwords(server.admin_passfile).values():
        assert password not in str(env) and password not in str(server.dashboard_env())


def test_a_writers_file_holding_every_role_hands_them_to_the_admin_file(private_server: PostgresServer) -> None:
    """A data dir whose writers' file holds every role and that has no admin file: the passwords are kept, the file narrowed."""
    server = private_server
    passwords = auth.read_passwords(server.admin_passfile)
    auth.write_passfile(server.passfile, server.port, passwords)
    server.admin_passfile.unlink()

    server.start()

    assert auth.read_passwords(server.admin_passfile) == passwords
    assert auth.read_passwords(server.passfile) == {"stock": passwords["stock"]}
    _connect(server.port, auth.SUPERUSER, server.admin_passfile).close()


def test_the_cluster_survives_its_data_dir_being_removed(private_server: PostgresServer) -> None:
    """`make clean` removes the data dir; a cluster kept elsewhere (as root) still starts, with its superuser's password."""
    server = private_server
    superuser = auth.read_passwords(server.admin_passfile)[auth.SUPERUSER]
    server.stop()
    shutil.rmtree(server.settings.data_dir)

    server.start()

    for passfile, user in ((server.admin_passfile, auth.SUPERUSER), (server.passfile, "stock")):
        _connect(server.port, user, passfile).close()
    _connect(server.port, auth.READER_ROLE, server.dashboard_passfile).close()
    if not server.root.is_relative_to(server.settings.data_dir):
        assert auth.read_passwords(server.admin_passfile)[auth.SUPERUSER] == superuser


def test_a_trusting_cluster_is_converted_on_the_next_start(private_server: PostgresServer, tmp_path: Path) -> None:
    """A cluster that trusts every login: `trust` in pg_hba.conf, roles without passwords, no password file."""
    admin = _connect(private_server.port, auth.SUPERUSER, private_server.admin_passfile)
    admin.autocommit = True
    with admin.cursor() as cur:
        for role in (auth.SUPERUSER, "stock", auth.READER_ROLE):
            cur.execute(f"ALTER ROLE {role} PASSWORD NULL")
        (private_server.pgdata / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        cur.execute("SELECT pg_reload_conf()")
    admin.close()
    old_passwords = auth.read_passwords(private_server.admin_passfile)
    for passfile in (private_server.admin_passfile, private_server.passfile, private_server.dashboard_passfile):
        passfile.unlink()
    nothing = tmp_path / "no-such-pgpass"
    _connect(private_server.port, "stock", nothing).close()  # the trusting cluster lets anyone in

    private_server.start()  # already running: `services up` on that data dir

    assert auth.hba_is_ours(private_server.pgdata)
    assert auth.read_passwords(private_server.admin_passfile) != old_passwords, "new passwords were generated"
    for user in (auth.SUPERUSER, "stock", auth.READER_ROLE):
        assert "no password supplied" in _refused(private_server.port, user, nothing)
        _connect(private_server.port, user, private_server.admin_passfile).close()


def test_a_lost_admin_password_file_is_reported_at_once(private_server: PostgresServer) -> None:
    saved = private_server.admin_passfile.read_bytes()
    private_server.admin_passfile.unlink()
    try:
        with pytest.raises(ServiceError, match=r"refuses the superuser password in .*admin\.pgpass.*restore it"):
            private_server.start()
    finally:
        private_server.admin_passfile.write_bytes(saved)
        private_server.admin_passfile.chmod(0o600)
    private_server.start()


def test_the_shared_server_wants_a_password_and_the_platform_has_it(services: Settings, tmp_path: Path) -> None:
    assert stat.S_IMODE(services.postgres_passfile.stat().st_mode) == 0o600
    assert "no password supplied" in _refused(services.postgres_port, "stock", tmp_path / "no-such-pgpass")
    # What every writer does: connect with POSTGRES_DSN alone, the password from the file its PGPASSFILE names.
    conn = psycopg2.connect(services.postgres_dsn, connect_timeout=5, passfile=str(services.postgres_passfile))
    try:
        assert conn.get_dsn_parameters().get("user") == "stock"
        assert "password" not in services.postgres_dsn
    finally:
        conn.close()


def test_a_dsn_for_another_server_gets_none_of_the_local_passwords(base_settings: Settings) -> None:
    remote = PostgresServer(base_settings.replace(postgres_dsn="postgresql://app@db.example.com:5432/stock"))
    assert "PGPASSFILE" not in remote.env(), "libpq's own lookup (~/.pgpass) must still serve a remote server"
    assert remote.dashboard_env() == {}
