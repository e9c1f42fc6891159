"""The container deployment: docker-compose.yml renders, wires the services together and starts them in order.

What each service may know (passwords, roles, the Redis ACL) is in
`test_docker_compose_secrets.py`; both render with the fixtures in `conftest.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stock_platform_tests.compose.rendering import APP_SERVICES, REPO, environment, published, secrets, settings_in_config

EXPECTED_SERVICES = {
    "kafka", "postgres", "redis", "producer", "spark", "dashboard",
    "dagster-webserver", "dagster-daemon", "kafka-ui", "pgadmin", "migrate", "postgres-roles",
}  # fmt: skip
WRITERS = tuple(name for name in APP_SERVICES if name != "dashboard")
# Settings a service must not receive: the public dashboard no market-data key or writer's credentials,
# the producer (which reads no database) no database credentials, the others not the dashboard's password.
WITHHELD = {
    "dashboard": {"FINNHUB_API_KEY", "DAGSTER_POSTGRES_URL"},
    **{name: {"DASHBOARD_PASSWORD"} for name in WRITERS},
    "producer": {"DASHBOARD_PASSWORD", "POSTGRES_DSN", "DAGSTER_POSTGRES_URL"},
}
# Settings that only mean something on the host (published ports, the local broker's quorum
# port, the local runtime's Kafka nodes and Spark cluster) or that the image fixes (the jar cache
# baked in at build time): not passed to containers.
HOST_SIDE_SETTINGS = {
    "POSTGRES_PORT", "REDIS_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT",
    "DAGSTER_PORT", "DASHBOARD_PORT", "STOCK_CACHE_DIR",
    "KAFKA_BROKERS", "SPARK_WORKERS", "SPARK_MASTER_PORT", "SPARK_MASTER_UI_PORT", "SPARK_WORKER_CORES", "SPARK_WORKER_MEMORY",
}  # fmt: skip


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
    env = environment(config["services"]["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "kafka:29092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert not any("ZOOKEEPER" in key for key in env)
    # The apache/kafka image refuses to start when the deprecated KAFKA_PORT is set.
    assert "KAFKA_PORT" not in env


def test_published_ports(config: dict) -> None:
    services = config["services"]
    assert (8501, 8501) in [(host, target) for _, host, target in published(services["dashboard"])]
    assert (3000, 3000) in [(host, target) for _, host, target in published(services["dagster-webserver"])]
    assert (8080, 8080) in [(host, target) for _, host, target in published(services["kafka-ui"])]
    assert 5050 in [host for _, host, _ in published(services["pgadmin"])]
    for name in ("postgres", "redis", "kafka"):
        for host_ip, _, _ in published(services[name]):
            assert host_ip == "127.0.0.1", f"{name} must only be published on the host's loopback"


def test_app_services_reach_the_infrastructure_by_service_name(config: dict) -> None:
    dummy = secrets("a")
    for name in APP_SERVICES:
        env = environment(config["services"][name])
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092", name
        assert env["REDIS_URL"].endswith("@redis:6379/0"), name
        assert env["STOCK_DATA_DIR"] == "/data", name
    for name in WRITERS:
        env = environment(config["services"][name])
        assert env["REDIS_URL"] == f"redis://:{dummy['REDIS_PASSWORD']}@redis:6379/0", name
        if name == "producer":
            continue
        assert env["POSTGRES_DSN"] == f"postgresql://stock:{dummy['POSTGRES_PASSWORD']}@postgres:5432/stock", name
        assert env["DAGSTER_POSTGRES_URL"].endswith("@postgres:5432/dagster"), name
    assert environment(config["services"]["dashboard"])["POSTGRES_DSN"].endswith("@postgres:5432/stock")


def test_every_setting_reaches_the_app_containers(config: dict) -> None:
    wanted = settings_in_config() - HOST_SIDE_SETTINGS
    for name in APP_SERVICES:
        missing = wanted - WITHHELD[name] - set(environment(config["services"][name]))
        assert not missing, f"{name} lacks {sorted(missing)}: add them to x-app-env in docker-compose.yml"
        given = WITHHELD[name] & set(environment(config["services"][name]))
        assert not given, f"{name} must not receive {sorted(given)}"


def test_the_producer_uses_no_database() -> None:
    """Why it gets no database credentials: nothing it runs opens a PostgreSQL connection."""
    ingestion = REPO / "stock_platform" / "ingestion"
    for module in ingestion.glob("*.py"):
        text = module.read_text()
        assert not re.search(r"psycopg2|postgres_dsn|dagster_postgres_url|sqlalchemy", text), module.name


def test_startup_order_waits_for_health_and_migrations(config: dict) -> None:
    services = config["services"]
    for name in ("kafka", "postgres", "redis", "dashboard", "dagster-webserver"):
        assert "healthcheck" in services[name], name
    for name in ("producer", "spark", "dagster-webserver", "dagster-daemon"):
        depends = services[name]["depends_on"]
        for infra in ("kafka", "redis") if name == "producer" else ("kafka", "postgres", "redis"):
            assert depends[infra]["condition"] == "service_healthy", (name, infra)
        if name != "producer":
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["producer"]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert not {"postgres", "migrate"} & set(services["producer"]["depends_on"]), "the producer waits for no database"
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
