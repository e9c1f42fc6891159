"""The first run's slow steps (Maven downloads, apt-get installs) report progress line by line, without the network."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.jars import POSTGRES_JDBC_VERSION, postgres_jdbc_jars
from stock_platform.runtime.progress import AptProgress, MavenProgress, format_size, run_with_progress

_CENTRAL = "https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/3.9.1/kafka_2.13-3.9.1"


class _Clock:
    """A clock the test moves by hand, so the reported durations are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sizes_read_like_mavens() -> None:
    assert [format_size(n) for n in (917, 2_900, 6_100_000, 46_200_000, 1_500_000_000)] == [
        "917 B",
        "2.9 kB",
        "6.1 MB",
        "46 MB",
        "1.5 GB",
    ]


def test_one_line_per_jar_with_its_size_time_and_running_total(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    progress = MavenProgress(clock=clock)
    with caplog.at_level(logging.INFO):
        progress.feed(f"[INFO] Downloading from central: {_CENTRAL}.pom")
        progress.feed(f"[INFO] Downloaded from central: {_CENTRAL}.pom (2.9 kB at 41 kB/s)")
        progress.feed(f"[INFO] Downloading from central: {_CENTRAL}.jar")
        clock.now += 2.3
        progress.feed(f"[INFO] Downloaded from central: {_CENTRAL}.jar (6.1 MB at 2.6 MB/s)")
        progress.feed("[INFO] Copying kafka_2.13-3.9.1.jar to /tmp/out/kafka_2.13-3.9.1.jar")
    assert caplog.messages == ["fetched kafka_2.13-3.9.1.jar (6.1 MB) in 2.3 s [jar 1, 6.1 MB so far]"]
    assert progress.summary() == "1 jars and 1 other files, 6.1 MB"


def test_small_files_get_a_line_only_after_a_quiet_spell(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    progress = MavenProgress(clock=clock, quiet=10.0)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            clock.now += 4
            progress.feed(f"[INFO] Downloaded from central: {_CENTRAL}.pom (2.9 kB at 41 kB/s)")
    assert caplog.messages == ["resolving dependencies: 3 POM and metadata files fetched so far"]


def test_apt_status_lines_give_a_line_per_ten_percent_of_each_phase(caplog: pytest.LogCaptureFixture) -> None:
    progress = AptProgress()
    lines = [f"dlstatus:{i}:{i * 4.5:.4f}:Retrieving file {i} of 22" for i in range(1, 23)]
    lines += [f"pmstatus:redis-server:{p}.0000:Installing redis-server" for p in (0, 3, 50, 51, 100)]
    with caplog.at_level(logging.INFO):
        claimed = [progress.feed(line) for line in [*lines, "E: Unable to locate package nosuch"]]
    assert claimed == [True] * len(lines) + [False]
    downloading = [m for m in caplog.messages if "downloading" in m]
    assert [m.split(": ")[1].split(" %")[0] for m in downloading] == [str(p) for p in range(0, 100, 10)]
    assert [m for m in caplog.messages if "installing" in m] == [
        "apt-get installing: 0 % (Installing redis-server)",
        "apt-get installing: 50 % (Installing redis-server)",
        "apt-get installing: 100 % (Installing redis-server)",
    ]


def test_lines_reach_the_reader_while_the_command_still_runs(tmp_path: Path) -> None:
    # The command waits for a file that only the reader creates, on seeing its first line: buffered until exit, it fails.
    flag = tmp_path / "seen"
    script = f"echo first; for i in $(seq 100); do [ -e {flag} ] && echo second && exit 0; sleep 0.1; done; exit 3"

    def feed(line: str) -> None:
        flag.touch()

    assert run_with_progress(["sh", "-c", script], feed) == (0, ["first", "second"])


def test_stderr_only_keeps_the_lines_the_reader_did_not_claim() -> None:
    script = "echo chatter; echo 'pmstatus:x:50:Installing x' >&2; echo 'E: broken' >&2; exit 100"
    assert run_with_progress(["sh", "-c", script], AptProgress().feed, stderr_only=True) == (100, ["E: broken"])


def _fake_tools(bin_dir: Path, mvn_body: str) -> None:
    """A `java` that does nothing and an `mvn` running `mvn_body`, so fetching needs neither a JDK nor the network."""
    bin_dir.mkdir()
    for name, body in (("java", "exit 0"), ("mvn", mvn_body)):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_fetching_jars_logs_each_jar_and_a_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"https://repo.maven.apache.org/maven2/org/postgresql/postgresql/{POSTGRES_JDBC_VERSION}/postgresql-{POSTGRES_JDBC_VERSION}"
    _fake_tools(
        tmp_path / "bin",
        f"""for arg; do case "$arg" in -DoutputDirectory=*) out="${{arg#-DoutputDirectory=}}";; esac; done
echo "[INFO] Downloading from central: {url}.pom"
echo "[INFO] Downloaded from central: {url}.pom (2.9 kB at 41 kB/s)"
echo "[INFO] Downloading from central: {url}.jar"
echo "[INFO] Downloaded from central: {url}.jar (1.1 MB at 5.2 MB/s)"
: > "$out/postgresql-{POSTGRES_JDBC_VERSION}.jar"
echo "[INFO] BUILD SUCCESS\"""",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with caplog.at_level(logging.INFO, logger="stock_platform.runtime.jars"):
        jars = postgres_jdbc_jars(tmp_path / "cache")
    assert [j.name for j in jars] == [f"postgresql-{POSTGRES_JDBC_VERSION}.jar"]
    fetched = [m for m in caplog.messages if m.startswith("fetched")]
    assert fetched[0].startswith(f"fetched postgresql-{POSTGRES_JDBC_VERSION}.jar (1.1 MB) in ")
    assert fetched[0].endswith("[jar 1, 1.1 MB so far]")
    assert fetched[1].startswith("fetched 1 jars and 1 other files, 1.1 MB in ")


def test_a_failed_fetch_names_mavens_error_and_keeps_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path / "bin", 'echo "[INFO] Scanning for projects..."; echo "[ERROR] Could not resolve dependencies"; exit 1')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(ServiceError, match="Could not resolve dependencies"):
        postgres_jdbc_jars(tmp_path / "cache")
    log = tmp_path / "cache" / "jars" / f"postgresql-jdbc-{POSTGRES_JDBC_VERSION}.maven.log"
    assert "[INFO] Scanning for projects..." in log.read_text()
