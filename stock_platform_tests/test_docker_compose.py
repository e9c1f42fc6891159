"""The container deployment: docker-compose.yml renders, wires the services, and takes secrets only from .env.

`docker-compose config` (Debian's v1 package, installed by the fixture when missing)
interpolates and validates the file without a Docker engine, so these tests run in the
fast suite. Each render gets a fresh environment: a variable exported in the shell
running the tests must not leak into the result.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
CONFIG_SOURCE = REPO / "stock_platform" / "config.py"

EXPECTED_SERVICES = {
    "kafka", "postgres", "redis", "producer", "spark", "dashboard",
    "dagster-webserver", "dagster-daemon", "kafka-ui", "pgadmin", "migrate", "postgres-roles",
}  # fmt: skip
APP_SERVICES = ("migrate", "producer", "spark", "dashboard", "dagster-webserver", "dagster-daemon")
WRITERS = tuple(name for name in APP_SERVICES if name != "dashboard")
SECRETS = ("POSTGRES_PASSWORD", "POSTGRES_READER_PASSWORD", "REDIS_PASSWORD", "PGADMIN_DEFAULT_PASSWORD", "KAFKA_UI_PASSWORD")
# Settings a service must not receive: the public dashboard no market-data key or writer's credentials,
# the other programs not the dashboard's password.
WITHHELD = {"dashboard": {"FINNHUB_API_KEY", "DAGSTER_POSTGRES_URL"}, **{name: {"DASHBOARD_PASSWORD"} for name in WRITERS}}
# Settings that only mean something on the host (published ports, the local broker's quorum
# port, the local runtime's Kafka nodes and Spark cluster) or that the image fixes (the jar cache
# baked in at build time): not passed to containers.
HOST_SIDE_SETTINGS = {
    "POSTGRES_PORT", "REDIS_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT",
    "DAGSTER_PORT", "DASHBOARD_PORT", "STOCK_CACHE_DIR",
    "KAFKA_BROKERS", "SPARK_WORKERS", "SPARK_MASTER_PORT", "SPARK_MASTER_UI_PORT", "SPARK_WORKER_CORES", "SPARK_WORKER_MEMORY",
}  # fmt: skip

Render = Callable[[dict[str, str]], subprocess.CompletedProcess[str]]


def _settings_in_config() -> set[str]:
    """Every environment variable stock_platform/config.py reads."""
    source = CONFIG_SOURCE.read_text()
    names = set(re.findall(r'_env_\w+\(\s*"([A-Z][A-Z0-9_]*)"', source))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]*)"', source))
    return names


def _env_example_lines() -> dict[str, str]:
    """NAME -> value of .env.example, including the `# NAME=value` lines listed for completeness."""
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def _env_file_with(tmp_path: Path, name: str, overrides: dict[str, str]) -> Path:
    """.env.example with `overrides` applied, written to tmp_path/name."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={overrides[key]}" if "=" in line and key in overrides else line)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """A function: .env overrides -> the completed `docker-compose config` run on .env.example plus them."""
    from stock_platform.runtime.system_packages import ensure_commands

    ensure_commands([("docker-compose", "docker-compose")])
    tmp = tmp_path_factory.mktemp("compose")
    counter = iter(range(1_000_000))

    def _render(overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env_file = _env_file_with(tmp, f"{next(counter)}.env", overrides)
        return subprocess.run(
            ["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp)},
        )  # fmt: skip

    return _render


def _secrets(tag: str) -> dict[str, str]:
    """A set of dummy secrets, distinct per tag and from each other."""
    return {name: f"dummy-{name.lower().replace('_', '-')}-{tag}" for name in SECRETS}


@pytest.fixture(scope="session")
def rendered_a(render: Render) -> str:
    """The rendered compose file for .env.example with secrets set A."""
    result = render(_secrets("a"))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def config(rendered_a: str) -> dict:
    """That rendering, parsed."""
    return yaml.safe_load(rendered_a)


def _published(service: dict) -> list[tuple[str, int, int]]:
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


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_renders_every_service_on_the_named_network(config: dict) -> None:
    assert EXPECTED_SERVICES <= set(config["services"])
    assert config["networks"]["default"]["name"] == "stock-pipeline-network"
    for name, service in config["services"].items():
        assert "network_mode" not in service, name


def test_images_and_versions(config: dict) -> None:
    services = config["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["kafka"]["image"].startswith("apache/kafka:3.")
    # The maintained fork, at a release (not `main` or `latest`); provectuslabs/kafka-ui is unmaintained since 2023.
    assert re.fullmatch(r"kafbat/kafka-ui:v\d+\.\d+\.\d+", services["kafka-ui"]["image"])
    # pgAdmin 9.2 fixed CVE-2025-2945 (remote code execution in the query tool); any older tag is refused.
    match = re.fullmatch(r"dpage/pgadmin4:(\d+)\.(\d+)(?:\.\d+)?", services["pgadmin"]["image"])
    assert match and (int(match[1]), int(match[2])) >= (9, 2), services["pgadmin"]["image"]
    assert not any("provectuslabs" in service.get("image", "") for service in services.values())


def test_kafka_is_kraft_without_zookeeper(config: dict) -> None:
    assert not any("zookeeper" in name for name in config["services"])
    env = _environment(config["services"]["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "kafka:29092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert not any("ZOOKEEPER" in key for key in env)
    # The apache/kafka image refuses to start when the deprecated KAFKA_PORT is set.
    assert "KAFKA_PORT" not in env


def test_published_ports(config: dict) -> None:
    services = config["services"]
    assert (8501, 8501) in [(host, target) for _, host, target in _published(services["dashboard"])]
    assert (3000, 3000) in [(host, target) for _, host, target in _published(services["dagster-webserver"])]
    assert (8080, 8080) in [(host, target) for _, host, target in _published(services["kafka-ui"])]
    assert 5050 in [host for _, host, _ in _published(services["pgadmin"])]
    for name in ("postgres", "redis", "kafka"):
        for host_ip, _, _ in _published(services[name]):
            assert host_ip == "127.0.0.1", f"{name} must only be published on the host's loopback"


def test_app_services_reach_the_infrastructure_by_service_name(config: dict) -> None:
    secrets = _secrets("a")
    for name in APP_SERVICES:
        env = _environment(config["services"][name])
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092", name
        assert env["POSTGRES_DSN"].endswith("@postgres:5432/stock"), name
        assert env["REDIS_URL"] == f"redis://:{secrets['REDIS_PASSWORD']}@redis:6379/0", name
        assert env["STOCK_DATA_DIR"] == "/data", name
    for name in WRITERS:
        env = _environment(config["services"][name])
        assert env["POSTGRES_DSN"] == f"postgresql://stock:{secrets['POSTGRES_PASSWORD']}@postgres:5432/stock", name
        assert env["DAGSTER_POSTGRES_URL"].endswith("@postgres:5432/dagster"), name


def test_every_setting_reaches_the_app_containers(config: dict) -> None:
    wanted = _settings_in_config() - HOST_SIDE_SETTINGS
    for name in APP_SERVICES:
        missing = wanted - WITHHELD[name] - set(_environment(config["services"][name]))
        assert not missing, f"{name} lacks {sorted(missing)}: add them to x-app-env in docker-compose.yml"
        given = WITHHELD[name] & set(_environment(config["services"][name]))
        assert not given, f"{name} must not receive {sorted(given)}"


def test_the_dashboard_reads_as_the_read_only_role_and_holds_no_other_secret(render: Render) -> None:
    secrets = {**_secrets("a"), "FINNHUB_API_KEY": "dummy-finnhub-key", "DASHBOARD_PASSWORD": "dummy-dashboard-password"}
    result = render(secrets)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    dashboard = services["dashboard"]
    env = _environment(dashboard)
    assert env["POSTGRES_DSN"] == f"postgresql://stock_reader:{secrets['POSTGRES_READER_PASSWORD']}@postgres:5432/stock"
    assert env["DASHBOARD_PASSWORD"] == "dummy-dashboard-password"
    rendered = yaml.safe_dump(dashboard)
    for secret in ("FINNHUB_API_KEY", "POSTGRES_PASSWORD", "PGADMIN_DEFAULT_PASSWORD", "KAFKA_UI_PASSWORD"):
        assert secrets[secret] not in rendered, f"the dashboard receives {secret}"
    assert _environment(services["producer"])["FINNHUB_API_KEY"] == "dummy-finnhub-key"
    for name in WRITERS:
        assert "dummy-dashboard-password" not in yaml.safe_dump(services[name]), name


def test_the_reader_role_is_made_before_the_migrations_grant_it_anything(config: dict) -> None:
    services = config["services"]
    roles = services["postgres-roles"]
    assert services["migrate"]["depends_on"]["postgres-roles"]["condition"] == "service_completed_successfully"
    assert roles["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The password reaches psql through its environment, never its command line (visible to every user in ps).
    assert _secrets("a")["POSTGRES_READER_PASSWORD"] not in " ".join(roles["command"])
    script = REPO / "docker" / "postgres-roles.sql"
    assert any(f"{script}:" in str(volume) or getattr(volume, "get", lambda _: None)("source") == str(script)
               for volume in roles["volumes"])  # fmt: skip
    text = script.read_text()
    assert "\\getenv reader_password POSTGRES_READER_PASSWORD" in text and "PASSWORD :'reader_password'" in text
    assert "stock_reader" in (REPO / "sql" / "013_dashboard_reader.sql").read_text()


def test_redis_requires_the_password_and_takes_it_off_the_command_line(config: dict) -> None:
    redis_service = config["services"]["redis"]
    script = " ".join(redis_service["command"])
    # `config` keeps Compose's `$$` escape; the container's shell sees `$REDISCLI_AUTH`.
    assert "redis-server -" in script and re.search(r"requirepass \$\$?REDISCLI_AUTH\n", script)
    assert _secrets("a")["REDIS_PASSWORD"] not in script
    assert _environment(redis_service)["REDISCLI_AUTH"] == _secrets("a")["REDIS_PASSWORD"]
    assert redis_service["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_startup_order_waits_for_health_and_migrations(config: dict) -> None:
    services = config["services"]
    for name in ("kafka", "postgres", "redis", "dashboard", "dagster-webserver"):
        assert "healthcheck" in services[name], name
    for name in ("producer", "spark", "dagster-webserver", "dagster-daemon"):
        depends = services[name]["depends_on"]
        for infra in ("kafka", "postgres", "redis"):
            assert depends[infra]["condition"] == "service_healthy", (name, infra)
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["command"] == ["stock-platform", "migrate"]
    for name, service in services.items():
        one_shot = name in {"migrate", "kafka-init", "dagster-init", "postgres-roles"}
        assert service["restart"] == ("no" if one_shot else "unless-stopped"), name


def test_dagster_supervisors_are_off_before_the_daemon_starts(config: dict) -> None:
    """Docker restarts the producer and spark containers; Dagster must not start a second copy as runs."""
    from stock_platform.definitions import defs

    services = config["services"]
    assert services["dagster-daemon"]["depends_on"]["dagster-init"]["condition"] == "service_completed_successfully"
    stopped = set(re.findall(r"dagster sensor stop (\w+)", " ".join(services["dagster-init"]["command"])))
    supervisors = {sensor.name for sensor in defs().sensors if sensor.name.endswith("_supervisor")}
    assert supervisors, "no supervisor sensors found in the Definitions"
    assert stopped == supervisors


def test_referenced_dockerfiles_and_mounted_files_exist(config: dict) -> None:
    built = set()
    for name, service in config["services"].items():
        if "build" in service:
            dockerfile = Path(service["build"]["context"]) / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            built.add(dockerfile.name)
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts missing {source}"
    assert {"producer.Dockerfile", "spark.Dockerfile", "dashboard.Dockerfile", "dagster.Dockerfile"} <= built


def _dockerignored() -> set[str]:
    """The top-level names .dockerignore keeps out of the build context (its simple patterns)."""
    lines = (line.strip() for line in (REPO / ".dockerignore").read_text().splitlines())
    return {line.rstrip("/") for line in lines if line and not line.startswith(("#", "!")) and "*" not in line}


@pytest.mark.parametrize("dockerfile", sorted((REPO / "docker").glob("*.Dockerfile")), ids=lambda p: p.name)
def test_dockerfile_copies_what_the_build_context_holds(dockerfile: Path) -> None:
    ignored = _dockerignored()
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), f"{dockerfile.name} copies missing {source}"
            assert source.split("/")[0] not in ignored, f"{dockerfile.name} copies {source}, which .dockerignore drops"
    assert ".env" in ignored, "the build context must never carry the secrets"


def test_spark_image_starts_offline() -> None:
    """The JRE and Spark's Kafka connector are installed at build time, not fetched when the job starts."""
    text = (REPO / "docker" / "spark.Dockerfile").read_text()
    assert "openjdk-17-jre-headless" in text
    assert "spark_kafka_jars(" in text
    assert "STOCK_CACHE_DIR=" in text


def test_dagster_commands_find_their_files(config: dict) -> None:
    for name in ("dagster-webserver", "dagster-daemon", "dagster-init"):
        command = " ".join(config["services"][name]["command"])
        assert "-w workspace.yaml" in command, name
    assert (REPO / "workspace.yaml").is_file()
    assert (REPO / "dagster.yaml").is_file(), "docker/dagster.Dockerfile bakes the repository's dagster.yaml in"


def test_passwords_come_only_from_the_env_file(render: Render, rendered_a: str) -> None:
    secrets_a, secrets_b = _secrets("a"), _secrets("b")
    rendered_b = render(secrets_b)
    assert rendered_b.returncode == 0, rendered_b.stderr
    for name in SECRETS:
        assert secrets_a[name] in rendered_a, f"{name} is not used"
    # Swapping env file A's secrets for B's must give exactly B's rendering: nothing else differs.
    swapped = rendered_a
    for name in SECRETS:
        swapped = swapped.replace(secrets_a[name], secrets_b[name])
    assert swapped == rendered_b.stdout


def test_no_password_literal_in_any_service(config: dict) -> None:
    allowed = set(_secrets("a").values())
    for name, service in config["services"].items():
        for key, value in _environment(service).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key):
                assert value == "" or value in allowed, f"{name}.{key} is not from the env file"
            for password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", value):
                assert password in allowed, f"{name}.{key} embeds a password not from the env file"


@pytest.mark.parametrize("secret", SECRETS)
def test_refuses_to_render_without_a_secret(render: Render, secret: str) -> None:
    result = render({**_secrets("a"), secret: ""})
    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_env_example_lists_every_setting() -> None:
    settings = _settings_in_config()
    assert len(settings) > 20, "the regex no longer finds config.py's settings"
    missing = settings - set(_env_example_lines())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_holds_no_secret() -> None:
    listed = _env_example_lines()
    for name in (*SECRETS, "FINNHUB_API_KEY", "DASHBOARD_PASSWORD"):
        assert listed[name] == "", f"{name} must be empty in .env.example"
