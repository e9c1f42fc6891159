"""Fixtures of the compose tests: docker-compose.yml rendered by `docker-compose config` with dummy secrets.

`docker-compose config` (Debian's v1 package, installed by the fixture when missing)
interpolates and validates the file without a Docker engine, so these tests run in the
fast suite. Each render gets a fresh environment: a variable exported in the shell
running the tests must not leak into the result.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from stock_platform_tests.compose.rendering import COMPOSE_FILE, REPO, Render, env_file_with, secrets


@pytest.fixture(scope="session")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """A function: .env overrides -> the completed `docker-compose config` run on .env.example plus them."""
    from stock_platform.runtime.system_packages import ensure_commands

    ensure_commands([("docker-compose", "docker-compose")])
    tmp = tmp_path_factory.mktemp("compose")
    counter = iter(range(1_000_000))

    def _render(overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env_file = env_file_with(tmp, f"{next(counter)}.env", overrides)
        return subprocess.run(
            ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp)},
        )  # fmt: skip

    return _render


@pytest.fixture(scope="session")
def rendered_a(render: Render) -> str:
    """The rendered compose file for .env.example with secrets set A."""
    result = render(secrets("a"))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def config(rendered_a: str) -> dict:
    """That rendering, parsed."""
    return yaml.safe_load(rendered_a)
