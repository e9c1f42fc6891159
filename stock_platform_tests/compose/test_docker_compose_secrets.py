"""The container deployment's secrets: each comes only from .env and reaches only the services that use it.

The dashboard, the public one, reads PostgreSQL as the read-only role and Redis
as a read-only ACL user; the producer gets no database credentials; no password
is written into the file or onto a command line.
"""

from __future__ import annotations

import re

import pytest
import yaml

from stock_platform_tests.compose.rendering import (
    APP_SERVICES,
    REPO,
    SECRETS,
    Render,
    env_example_lines,
    environment,
    secrets,
    settings_in_config,
)

WRITERS = tuple(name for name in APP_SERVICES if name != "dashboard")
# The commands the dashboard sends to Redis (stock_platform/dashboard/hot.py, the heartbeat reader it calls in
# stock_platform/storage/heartbeats.py, and redis-py's health check).
DASHBOARD_REDIS_COMMANDS = {"hgetall", "zrange", "ping"}


def _redis_config(config: dict) -> str:
    """The configuration the redis service hands redis-server on its stdin, as rendered."""
    return " ".join(config["services"]["redis"]["command"])


def test_the_dashboard_reads_as_the_read_only_roles_and_holds_no_other_secret(render: Render) -> None:
    given = {**secrets("a"), "FINNHUB_API_KEY": "dummy-finnhub-key", "DASHBOARD_PASSWORD": "dummy-dashboard-password"}
    result = render(given)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    dashboard = services["dashboard"]
    env = environment(dashboard)
    assert env["POSTGRES_DSN"] == f"postgresql://stock_reader:{given['POSTGRES_READER_PASSWORD']}@postgres:5432/stock"
    assert env["REDIS_URL"] == f"redis://dashboard:{given['REDIS_DASHBOARD_PASSWORD']}@redis:6379/0"
    assert env["DASHBOARD_PASSWORD"] == "dummy-dashboard-password"
    rendered = yaml.safe_dump(dashboard)
    for secret in ("FINNHUB_API_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "PGADMIN_DEFAULT_PASSWORD", "KAFKA_UI_PASSWORD"):
        assert given[secret] not in rendered, f"the dashboard receives {secret}"
    assert environment(services["producer"])["FINNHUB_API_KEY"] == "dummy-finnhub-key"
    for name in WRITERS:
        text = yaml.safe_dump(services[name])
        assert "dummy-dashboard-password" not in text, name
        assert given["REDIS_DASHBOARD_PASSWORD"] not in text and given["POSTGRES_READER_PASSWORD"] not in text, name


def test_the_producer_gets_no_database_credentials(config: dict) -> None:
    env = environment(config["services"]["producer"])
    assert not {"POSTGRES_DSN", "DAGSTER_POSTGRES_URL"} & set(env)
    assert secrets("a")["POSTGRES_PASSWORD"] not in yaml.safe_dump(config["services"]["producer"])


def test_the_reader_role_is_made_before_the_migrations_grant_it_anything(config: dict) -> None:
    services = config["services"]
    roles = services["postgres-roles"]
    assert services["migrate"]["depends_on"]["postgres-roles"]["condition"] == "service_completed_successfully"
    assert roles["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The password reaches psql through its environment, never its command line (visible to every user in ps).
    assert secrets("a")["POSTGRES_READER_PASSWORD"] not in " ".join(roles["command"])
    script = REPO / "docker" / "postgres-roles.sql"
    assert any(f"{script}:" in str(volume) or getattr(volume, "get", lambda _: None)("source") == str(script)
               for volume in roles["volumes"])  # fmt: skip
    text = script.read_text()
    assert "\\getenv reader_password POSTGRES_READER_PASSWORD" in text and "PASSWORD :'reader_password'" in text
    assert "stock_reader" in (REPO / "sql" / "013_dashboard_reader.sql").read_text()


def test_redis_requires_the_password_and_takes_it_off_the_command_line(config: dict) -> None:
    redis_service = config["services"]["redis"]
    script = _redis_config(config)
    # `config` keeps Compose's `$$` escape; the container's shell sees `$REDISCLI_AUTH`.
    assert "redis-server -" in script and re.search(r"requirepass \$\$?REDISCLI_AUTH\n", script)
    for name in ("REDIS_PASSWORD", "REDIS_DASHBOARD_PASSWORD"):
        assert secrets("a")[name] not in script, f"{name} is on redis-server's command line"
    env = environment(redis_service)
    assert env["REDISCLI_AUTH"] == secrets("a")["REDIS_PASSWORD"]
    assert env["REDIS_DASHBOARD_PASSWORD"] == secrets("a")["REDIS_DASHBOARD_PASSWORD"]
    assert redis_service["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_the_dashboards_redis_user_may_only_read_the_platforms_keys(config: dict) -> None:
    [line] = [line for line in _redis_config(config).splitlines() if line.strip().startswith("user dashboard ")]
    rules = line.split()[2:]
    assert rules[0] == "on" and re.fullmatch(r">\$\$?REDIS_DASHBOARD_PASSWORD", rules[1]), "the password from its variable"
    assert "resetkeys" in rules and "resetchannels" in rules, "no key or channel the defaults would allow"
    assert [r for r in rules if "~" in r] == ["%R~stock:*"], "read access to the platform's keys only"
    grants = rules[rules.index("-@all") + 1 :]
    assert "-@all" in rules and all(g.startswith("+") for g in grants), "nothing allowed but what is listed after -@all"
    assert {g[1:] for g in grants} == DASHBOARD_REDIS_COMMANDS
    hot = (REPO / "stock_platform" / "dashboard" / "hot.py").read_text()
    assert set(re.findall(r"pipe\.(\w+)\(", hot)) - {"execute"} <= DASHBOARD_REDIS_COMMANDS, "hot.py sends a command not granted"
    beats = (REPO / "stock_platform" / "storage" / "heartbeats.py").read_text()
    start = beats.index("def read_heartbeats(")
    end = beats.find("\ndef ", start)
    reader = beats[start : end if end > 0 else None]
    sent = set(re.findall(r"pipe\.(\w+)\(", reader)) - {"execute"}
    assert sent and sent <= DASHBOARD_REDIS_COMMANDS, f"the heartbeat reader sends a command not granted: {sent}"


def test_the_redis_user_follows_the_key_prefix(render: Render) -> None:
    result = render({**secrets("a"), "REDIS_KEY_PREFIX": "desk7:"})
    assert result.returncode == 0, result.stderr
    assert "%R~desk7:* " in _redis_config(yaml.safe_load(result.stdout))


def test_passwords_come_only_from_the_env_file(render: Render, rendered_a: str) -> None:
    secrets_a, secrets_b = secrets("a"), secrets("b")
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
    allowed = set(secrets("a").values())
    for name, service in config["services"].items():
        for key, value in environment(service).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key):
                assert value == "" or value in allowed, f"{name}.{key} is not from the env file"
            for password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", value):
                assert password in allowed, f"{name}.{key} embeds a password not from the env file"


@pytest.mark.parametrize("secret", SECRETS)
def test_refuses_to_render_without_a_secret(render: Render, secret: str) -> None:
    result = render({**secrets("a"), secret: ""})
    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_env_example_lists_every_setting() -> None:
    settings = settings_in_config()
    assert len(settings) > 20, "the regex no longer finds config.py's settings"
    missing = settings - set(env_example_lines())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_holds_no_secret() -> None:
    listed = env_example_lines()
    for name in (*SECRETS, "FINNHUB_API_KEY", "DASHBOARD_PASSWORD"):
        assert listed[name] == "", f"{name} must be empty in .env.example"
