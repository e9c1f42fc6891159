"""Settings come from the environment, with working defaults, and never show the Finnhub key."""

from __future__ import annotations

import pytest

from stock_platform.config import DEFAULT_SYMBOLS, load_settings


def test_defaults_work_without_any_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FINNHUB_API_KEY", "STOCK_SYMBOLS", "KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN", "REDIS_URL", "STOCK_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.symbols == DEFAULT_SYMBOLS
    assert settings.use_simulator
    assert settings.kafka_topic == "stock-quotes"
    assert settings.redis_ttl_seconds == 300
    assert settings.postgres_dsn.startswith("postgresql://")


def test_fixed_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCK_SYMBOLS", " aapl, msft ,")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    monkeypatch.setenv("POSTGRES_DSN", "postgresql://u@db:5432/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    monkeypatch.setenv("STOCK_DATA_DIR", "/tmp/somewhere")
    settings = load_settings()
    assert settings.symbols == ("AAPL", "MSFT")
    assert settings.kafka_bootstrap_servers == "broker:29092"
    assert settings.postgres_dsn == "postgresql://u@db:5432/x"
    assert settings.redis_url == "redis://cache:6379/1"
    assert str(settings.data_dir) == "/tmp/somewhere"


def test_ports_move_the_default_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSTGRES_PORT", "15432")
    monkeypatch.setenv("REDIS_PORT", "16379")
    monkeypatch.setenv("KAFKA_PORT", "19092")
    settings = load_settings()
    assert ":15432/" in settings.postgres_dsn
    assert settings.redis_url.endswith(":16379/0")
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert settings.kafka_controller_port == 19093


def test_key_never_appears_in_repr_or_description(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_API_KEY", "sekrit-key-123")
    settings = load_settings()
    assert not settings.use_simulator
    assert "sekrit-key-123" not in repr(settings)
    assert "sekrit-key-123" not in str(settings.describe())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STOCK_POLL_INTERVAL_SECONDS", "soon", "STOCK_POLL_INTERVAL_SECONDS must be a positive number"),
        ("REDIS_PORT", "6379.5", "REDIS_PORT must be a whole number"),
        ("STOCK_SOURCE", "bloomberg", "STOCK_SOURCE must be auto, simulator, finnhub or replay"),
        ("STOCK_SYMBOLS", " , ", "STOCK_SYMBOLS must list at least one symbol"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load_settings()


@pytest.fixture
def cluster_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Kafka, Spark or port setting from the developer's shell: the defaults are what is tested."""
    import os

    for name in [n for n in os.environ if n.startswith(("KAFKA_", "SPARK_", "POSTGRES_", "REDIS_", "DAGSTER_", "DASHBOARD_"))]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_one_broker_and_local_spark_by_default(cluster_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.kafka_brokers == 1
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (1, 1)
    assert settings.kafka_node_ports == [(9092, 9093)]
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.spark_workers == 0 and settings.spark_worker_ui_ports == []
    assert settings.spark_master.startswith("local[")


def test_three_brokers_list_every_node_and_replicate_three_times(cluster_env: pytest.MonkeyPatch) -> None:
    cluster_env.setenv("KAFKA_BROKERS", "3")
    settings = load_settings()
    assert settings.kafka_node_ports == [(9092, 9093), (9094, 9095), (9096, 9097)]
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)


@pytest.mark.parametrize(("brokers", "replication", "in_sync"), [("2", 2, 1), ("5", 3, 2)])
def test_replication_defaults_follow_the_broker_count(
    cluster_env: pytest.MonkeyPatch, brokers: str, replication: int, in_sync: int
) -> None:
    cluster_env.setenv("KAFKA_BROKERS", brokers)
    settings = load_settings()
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (replication, in_sync)


def test_replication_can_be_set_for_a_remote_cluster(cluster_env: pytest.MonkeyPatch) -> None:
    cluster_env.setenv("KAFKA_REPLICATION_FACTOR", "3")
    settings = load_settings()
    assert (settings.kafka_brokers, settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (1, 3, 2)


def test_spark_workers_make_the_local_master_the_default(cluster_env: pytest.MonkeyPatch) -> None:
    cluster_env.setenv("SPARK_WORKERS", "2")
    cluster_env.setenv("SPARK_MASTER_PORT", "7177")
    settings = load_settings()
    assert settings.spark_master == "spark://127.0.0.1:7177"
    assert settings.spark_worker_ui_ports == [8081, 8082]
    cluster_env.setenv("SPARK_MASTER", "spark://spark-head:7077")
    assert load_settings().spark_master == "spark://spark-head:7077", "an explicit SPARK_MASTER wins"


def test_security_settings_are_read_and_normalised(cluster_env: pytest.MonkeyPatch) -> None:
    cluster_env.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    cluster_env.setenv("KAFKA_SASL_MECHANISM", "scram-sha-256")
    cluster_env.setenv("KAFKA_SASL_USERNAME", "app")
    cluster_env.setenv("KAFKA_SASL_PASSWORD", "hunter2-secret")
    settings = load_settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings.describe())
    # A child process needs the password (through its environment, like the Finnhub key) to log in too.
    env = settings.to_env()
    assert env["KAFKA_SASL_PASSWORD"] == "hunter2-secret" and env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"


def test_to_env_recreates_the_cluster_settings(cluster_env: pytest.MonkeyPatch) -> None:
    for name, value in {"KAFKA_BROKERS": "3", "KAFKA_MIN_INSYNC_REPLICAS": "3", "SPARK_WORKERS": "2",
                        "SPARK_WORKER_CORES": "2", "SPARK_WORKER_MEMORY": "2g"}.items():  # fmt: skip
        cluster_env.setenv(name, value)
    first = load_settings()
    for name, value in first.to_env().items():
        cluster_env.setenv(name, value)
    again = load_settings()
    fields = ("kafka_brokers", "kafka_replication_factor", "kafka_min_insync_replicas", "kafka_bootstrap_servers",
              "spark_workers", "spark_master", "spark_worker_cores", "spark_worker_memory")  # fmt: skip
    assert [getattr(again, f) for f in fields] == [getattr(first, f) for f in fields]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_BROKERS": "0"}, "KAFKA_BROKERS must be at least 1"),
        ({"SPARK_WORKERS": "-1"}, "SPARK_WORKERS must be at least 0"),
        ({"KAFKA_BROKERS": "3", "KAFKA_MIN_INSYNC_REPLICAS": "4"}, r"KAFKA_MIN_INSYNC_REPLICAS \(4\) must not exceed"),
        ({"SPARK_WORKER_MEMORY": "lots"}, "SPARK_WORKER_MEMORY must be a size such as 1g or 512m"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
            "KAFKA_SASL_MECHANISM must be one of",
        ),  # fmt: skip
        ({"KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_PASSWORD needs KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT"),
        ({"KAFKA_BROKERS": "3", "KAFKA_PORT": "6375"}, r"KAFKA_PORT\+4 \(Kafka node 3\) and REDIS_PORT both use port 6379"),
        (
            {"SPARK_WORKERS": "2", "DASHBOARD_PORT": "8082"},
            r"SPARK_MASTER_UI_PORT\+2 \(Spark worker 2\) and DASHBOARD_PORT both use port 8082",
        ),  # fmt: skip
    ],
)
def test_cluster_settings_that_cannot_work_name_the_setting(
    cluster_env: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        cluster_env.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load_settings()


def test_dashboard_password_is_a_secret_and_the_limits_are_read(cluster_env: pytest.MonkeyPatch) -> None:
    cluster_env.setenv("DASHBOARD_PASSWORD", "open-sesame-42")
    cluster_env.setenv("DASHBOARD_STATEMENT_TIMEOUT_MS", "2500")
    settings = load_settings()
    assert settings.dashboard_password.get_secret_value() == "open-sesame-42"
    assert "open-sesame-42" not in repr(settings) and "open-sesame-42" not in str(settings.describe())
    assert "open-sesame-42" not in str(settings.to_env()), "no child process of the platform needs it"
    assert (settings.dashboard_statement_timeout_ms, settings.dashboard_lock_timeout_ms) == (2500, 2000)
    cluster_env.setenv("DASHBOARD_LOCK_TIMEOUT_MS", "0")
    with pytest.raises(ValueError, match="DASHBOARD_LOCK_TIMEOUT_MS must be at least 1"):
        load_settings()


@pytest.fixture
def passfile_env(cluster_env: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    """A data dir whose local PostgreSQL has a password file, and no PGPASSFILE chosen (restored afterwards)."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pgpass").write_text("127.0.0.1:5432:*:stock:x\n")
    cluster_env.setenv("STOCK_DATA_DIR", str(tmp_path))
    cluster_env.delenv("PGPASSFILE", raising=False)
    return cluster_env


def test_loading_the_settings_changes_no_environment_variable(passfile_env: pytest.MonkeyPatch, tmp_path) -> None:
    import os

    before = dict(os.environ)
    settings = load_settings()
    assert dict(os.environ) == before, "PGPASSFILE (or anything else) is set only in the children's environments"
    assert settings.postgres_passfile == tmp_path / "secrets" / "pgpass"
    assert settings.postgres_dsn == "postgresql://stock@127.0.0.1:5432/stock", "the DSN itself carries no password"


def test_a_connection_of_our_own_names_the_local_password_file_in_its_dsn(passfile_env: pytest.MonkeyPatch, tmp_path) -> None:
    from psycopg2.extensions import parse_dsn

    from stock_platform.config_passfile import with_local_passfile

    dsn = parse_dsn(with_local_passfile(load_settings()))
    assert dsn["passfile"] == str(tmp_path / "secrets" / "pgpass") and "password" not in dsn
    assert (dsn["user"], dsn["host"], dsn["port"], dsn["dbname"]) == ("stock", "127.0.0.1", "5432", "stock")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app@db.example.com:5432/stock",  # remote: libpq's own lookup stays
        "postgresql://stock@127.0.0.1:6543/stock",  # another local server than POSTGRES_PORT's
    ],
)
def test_another_servers_dsn_is_left_as_it_is(passfile_env: pytest.MonkeyPatch, dsn: str) -> None:
    from stock_platform.config_passfile import with_local_passfile

    passfile_env.setenv("POSTGRES_DSN", dsn)
    assert with_local_passfile(load_settings()) == dsn
