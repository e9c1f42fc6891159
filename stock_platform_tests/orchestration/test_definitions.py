"""The one Definitions loads, wires every resource, and its asset graph follows the seed's data flow."""

import dagster as dg
import pytest

from stock_platform import definitions
from stock_platform.config import load_settings
from stock_platform.orchestration.assets import STOCK_QUOTES_KEY
from stock_platform.orchestration.resources import KafkaResource


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("FINNHUB_API_KEY", "not-a-real-key-123")
    loaded = definitions.defs()
    dg.Definitions.validate_loadable(loaded)
    return loaded


def test_jobs_schedules_and_sensors_are_defined(defs: dg.Definitions) -> None:
    for job in ("streaming_job", "producer_job", "compaction_job", "observe_stock_quotes"):
        assert defs.resolve_job_def(job).name == job
    sensors = {s.name: s for s in defs.sensors or []}
    assert {"producer_supervisor", "streaming_supervisor", "record_run_failures"} <= set(sensors)
    assert sensors["streaming_supervisor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["producer_supervisor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert {s.name for s in defs.schedules or []} == {
        "compaction_job_schedule", "observe_stock_quotes_schedule", "check_stream_tables_schedule",
    }  # fmt: skip


def test_lineage_matches_the_data_flow(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()
    }
    assert parents["stock_prices"] == {STOCK_QUOTES_KEY.to_user_string()}
    assert parents["dead_letters"] == {STOCK_QUOTES_KEY.to_user_string()}
    assert parents["stock_candles_1m"] == {"stock_prices"}
    assert parents["stock_daily_bars"] == {"stock_candles_1m", "stock_prices"}
    assert graph.get(dg.AssetKey("stock_daily_bars")).partitions_def is not None
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} == {"kafka", "postgres", "daily"}


def test_secrets_are_env_vars_not_values(defs: dg.Definitions) -> None:
    assert {"postgres", "redis", "kafka", "finnhub", "spark"} <= set(defs.resources)
    api_key = defs.resources["finnhub"].__dict__["api_key"]
    # Bound to the variable's name and read at launch: the UI shows FINNHUB_API_KEY, never the key.
    assert isinstance(api_key, dg.EnvVar) and api_key.env_var_name == "FINNHUB_API_KEY"
    assert "not-a-real-key-123" not in repr(defs.resources["finnhub"])


def test_unset_variables_fall_back_to_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINNHUB_API_KEY", raising=False)
    monkeypatch.delenv("KAFKA_TOPIC", raising=False)
    resources = definitions.build_resources(load_settings())
    assert resources["finnhub"].api_key == ""
    assert resources["kafka"].topic == "stock-quotes"


def test_kafka_password_is_an_env_var_and_reaches_the_children(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
                        "KAFKA_SASL_USERNAME": "app", "KAFKA_SASL_PASSWORD": "kafka-secret-456"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    kafka = definitions.build_resources(load_settings())["kafka"]
    password = kafka.__dict__["sasl_password"]
    assert isinstance(password, dg.EnvVar) and password.env_var_name == "KAFKA_SASL_PASSWORD"
    assert "kafka-secret-456" not in repr(kafka)
    # Resolved as a run would resolve it: the producer and stream subprocesses get the login in their environment.
    resolved = KafkaResource(
        bootstrap_servers="broker:9093", security_protocol="sasl_ssl", sasl_mechanism="plain",
        sasl_username="app", sasl_password="kafka-secret-456",
    )  # fmt: skip
    assert resolved.security().protocol == "SASL_SSL"
    assert resolved.env()["KAFKA_SASL_PASSWORD"] == "kafka-secret-456"
    assert resolved.env()["KAFKA_SASL_MECHANISM"] == "PLAIN"
    assert "KAFKA_SASL_PASSWORD" not in KafkaResource(bootstrap_servers="b:9092").env(), "nothing extra for PLAINTEXT"
