"""The settings' documentation is generated from their one declaration and kept in step with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stock_platform.cli import main as cli_main
from stock_platform.config import Settings, setting_env_name
from stock_platform.settings_docs import (
    ENV_EXAMPLE_MARKERS,
    README_MARKERS,
    render_env_example,
    render_readme_table,
    replace_block,
    setting_docs,
    setting_sources,
)

ROOT = Path(__file__).resolve().parents[1]


def _block(text: str, markers: tuple[str, str]) -> str:
    begin, end = text.index(markers[0]), text.index(markers[1])
    return text[begin : end + len(markers[1])] + "\n"


@pytest.mark.parametrize(
    ("name", "markers", "render"),
    [(".env.example", ENV_EXAMPLE_MARKERS, render_env_example), ("README.md", README_MARKERS, render_readme_table)],
)
def test_the_files_hold_what_the_declarations_say(name: str, markers: tuple[str, str], render) -> None:
    assert _block((ROOT / name).read_text(), markers) == render(), f"{name} is stale: run `make settings-docs`"


def test_every_setting_appears_with_its_default_in_both_files() -> None:
    env_example = _block((ROOT / ".env.example").read_text(), ENV_EXAMPLE_MARKERS)
    readme = _block((ROOT / "README.md").read_text(), README_MARKERS)
    assert len(setting_docs()) == len(Settings.model_fields) > 50
    for doc in setting_docs():
        value = f'"{doc.default}"' if " " in doc.default else doc.default
        assert f"{doc.variable}={value}\n" in env_example, doc.variable
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{doc.variable}` |"))
        if doc.derived:
            assert doc.derived in row
        elif doc.default and not doc.secret:
            assert f"`{doc.default}`" in row, doc.variable


def test_secrets_have_no_default_written_anywhere() -> None:
    secrets = [d for d in setting_docs() if d.secret]
    assert {d.variable for d in secrets} == {"FINNHUB_API_KEY", "KAFKA_SASL_PASSWORD", "DASHBOARD_PASSWORD"}
    assert all(d.default == "" for d in secrets)


def test_a_block_is_replaced_between_its_markers_only() -> None:
    text = f"before\n{README_MARKERS[0]}\nold\n{README_MARKERS[1]}\nafter\n"
    assert replace_block(text, README_MARKERS, "NEW\n") == "before\nNEW\nafter\n"
    with pytest.raises(ValueError, match="markers not found"):
        replace_block("no markers", README_MARKERS, "NEW\n")


def test_sources_follow_the_loading_order(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("REDIS_PORT=7000\nKAFKA_TOPIC=from-file\nSTOCK_SYMBOLS=\n")
    sources = setting_sources({"KAFKA_TOPIC": "from-env", "STOCK_SYMBOLS": " "}, env_file)
    assert sources["kafka_topic"] == "environment", "the environment wins over .env"
    assert sources["redis_port"] == str(env_file)
    assert sources["symbols"] == "default", "empty means unset, in the environment and in .env"
    assert sources["postgres_dsn"].startswith("derived")


def test_dotenv_is_read_without_sourcing_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKA_TOPIC", raising=False)
    monkeypatch.setenv("REDIS_PORT", "7001")
    (tmp_path / ".env").write_text('KAFKA_TOPIC=from-dotenv\nREDIS_PORT=7002\nSTOCK_SYMBOLS="ibm, aapl"\nX=$(touch pwned)\n')
    settings = Settings()
    assert (settings.kafka_topic, settings.redis_port, settings.symbols) == ("from-dotenv", 7001, ("IBM", "AAPL"))
    assert settings.redis_url == "redis://127.0.0.1:7001/0", "derived from the port that won"
    assert not (tmp_path / "pwned").exists()


def test_config_command_shows_values_and_sources_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FINNHUB_API_KEY", "very-secret-key-77")
    monkeypatch.setenv("KAFKA_TOPIC", "quotes-x")
    assert cli_main(["config"]) == 0
    out = capsys.readouterr().out
    assert "very-secret-key-77" not in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()}
    assert lines["FINNHUB_API_KEY"][1:] == ["****", "environment"]
    assert lines["KAFKA_TOPIC"][1:] == ["quotes-x", "environment"]
    assert lines["KAFKA_PARTITIONS"][1:] == ["3", "default"]
    assert set(lines) == {setting_env_name(name) for name in Settings.model_fields}
