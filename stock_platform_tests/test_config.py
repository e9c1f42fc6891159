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
        ("STOCK_POLL_INTERVAL_SECONDS", "soon", "STOCK_POLL_INTERVAL_SECONDS must be a number"),
        ("REDIS_PORT", "6379.5", "REDIS_PORT must be a whole number"),
        ("STOCK_SOURCE", "bloomberg", "STOCK_SOURCE must be auto, simulator, finnhub or replay"),
        ("STOCK_SYMBOLS", " , ", "STOCK_SYMBOLS must list at least one symbol"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load_settings()
