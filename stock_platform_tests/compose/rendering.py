"""What the compose tests share: the repository's files, dummy secrets, and readers of a rendered compose file."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "APP_SERVICES",
    "COMPOSE_FILE",
    "ENV_EXAMPLE",
    "REPO",
    "SECRETS",
    "Render",
    "env_example_lines",
    "env_file_with",
    "environment",
    "published",
    "secrets",
    "settings_in_config",
]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
CONFIG_SOURCE = REPO / "stock_platform" / "config.py"

APP_SERVICES = ("migrate", "producer", "spark", "dashboard", "dagster-webserver", "dagster-daemon")
SECRETS = (
    "POSTGRES_PASSWORD", "POSTGRES_READER_PASSWORD", "REDIS_PASSWORD", "REDIS_DASHBOARD_PASSWORD",
    "PGADMIN_DEFAULT_PASSWORD", "KAFKA_UI_PASSWORD",
)  # fmt: skip

Render = Callable[[dict[str, str]], subprocess.CompletedProcess[str]]


def settings_in_config() -> set[str]:
    """Every environment variable stock_platform/config.py declares."""
    from stock_platform.config import Settings, setting_env_name

    return {setting_env_name(name) for name in Settings.model_fields}


def env_example_lines() -> dict[str, str]:
    """NAME -> value of .env.example, including the `# NAME=value` lines listed for completeness."""
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def env_file_with(tmp_path: Path, name: str, overrides: dict[str, str]) -> Path:
    """.env.example with `overrides` applied, written to tmp_path/name."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={overrides[key]}" if "=" in line and key in overrides else line)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def secrets(tag: str) -> dict[str, str]:
    """A set of dummy secrets, distinct per tag and from each other."""
    return {name: f"dummy-{name.lower().replace('_', '-')}-{tag}" for name in SECRETS}


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port; "" as address means every interface."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        out.append((host_ip, int(parts[-2]), int(parts[-1])))
    return out


def environment(service: dict) -> dict[str, str]:
    """A rendered service's environment as NAME -> value (None, an unset default, as "")."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}
