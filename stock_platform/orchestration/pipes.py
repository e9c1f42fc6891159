"""Launching a supervised process through Dagster Pipes, with its progress reported while it runs.

`run_supervised` runs one process for the length of an op: its stdout/stderr
are the run's compute logs, `pipes.log` lines become run log lines, each
per-batch custom message becomes one structured log line as it arrives (and,
optionally, a periodic materialisation with running totals), and each
materialisation the process reports is recorded at once, not when the endless
process exits. Cancelling the run sends SIGTERM (what `stock-platform
produce|stream` stop on), then SIGKILL after a grace period; the child also
gets SIGTERM if the run worker itself dies, so it never outlives its run.
"""

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

__all__ = ["PID_TAG", "LivePipesMessageReader", "SupervisedPipesClient", "run_supervised"]

logger = logging.getLogger(__name__)

# Run tag holding the supervised process's pid, so the supervisor can tell "idle" from "gone".
PID_TAG = "stock_platform/pid"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to the child when the run worker that launched it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _raw(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Pipes metadata ({"raw_value", "type"} per key) as plain values Dagster accepts."""
    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        out[key] = value.get("raw_value") if isinstance(value, dict) and "raw_value" in value else value
    return out


class _BatchProgress:
    """Totals of the per-batch messages, turned into an asset materialisation at most every `every_s` seconds.

    The stream reports its own materialisation only when it stops (never, if it is killed), so the run
    publishes the running totals and the last batch's figures while it runs.
    """

    _COUNTS = ("rows_in", "inserted", "duplicates", "dead_letters")
    _LAST = ("batch_id", "duration_ms", "lag_event_ms", "lag_kafka_ms", "lag_kafka_max_ms")

    def __init__(self, asset_key: str, every_s: float) -> None:
        self.asset_key = dg.AssetKey.from_user_string(asset_key)
        self.every_s = every_s
        self.totals = dict.fromkeys(self._COUNTS, 0)
        self.batches = 0
        self._last_emit = float("-inf")

    def add(self, payload: Mapping[str, Any]) -> dg.AssetMaterialization | None:
        """Count one batch; return a materialisation when one is due."""
        self.batches += 1
        for name in self._COUNTS:
            self.totals[name] += int(payload.get(name) or 0)
        now = time.monotonic()
        if now - self._last_emit < self.every_s:
            return None
        self._last_emit = now
        last = {f"last_{k}": payload[k] for k in self._LAST if payload.get(k) is not None}
        metadata = {"batches": self.batches, **{f"total_{k}": v for k, v in self.totals.items()}, **last}
        return dg.AssetMaterialization(asset_key=self.asset_key, metadata=metadata)


class _LiveHandler:
    """Wraps the Pipes message handler so progress reaches the run while the process is still running."""

    def __init__(
        self, handler: dg.PipesMessageHandler, context: dg.OpExecutionContext, component: str, progress: _BatchProgress | None
    ) -> None:
        self._handler = handler
        self._context = context
        self._component = component
        self._progress = progress

    def handle_message(self, message: Mapping[str, Any]) -> None:
        method, params = message.get("method"), message.get("params") or {}
        if method == "report_custom_message":
            payload = params.get("payload")
            if isinstance(payload, dict):
                fields = " ".join(f"{k}={v}" for k, v in payload.items())
                self._context.log.info(f"[{self._component} batch] {fields}")
                if self._progress is not None and payload.get("kind", "").endswith("batch"):
                    materialization = self._progress.add(payload)
                    if materialization is not None:
                        self._context.log_event(materialization)
        elif method == "report_asset_materialization":
            # Recorded now rather than queued until the (endless) process exits.
            self._context.log_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey.from_user_string(params["asset_key"]),
                    metadata=_raw(params.get("metadata")),
                )
            )
            return
        self._handler.handle_message(message)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)


class LivePipesMessageReader(dg.PipesTempFileMessageReader):
    """The temp-file message reader, passing each message through `_LiveHandler` first."""

    def __init__(self, context: dg.OpExecutionContext, component: str, progress: _BatchProgress | None = None) -> None:
        super().__init__()
        self._live_context = context
        self._component = component
        self._progress = progress

    @contextmanager
    def read_messages(self, handler: dg.PipesMessageHandler) -> Iterator[Mapping[str, Any]]:
        """Read messages as the base reader does, through the live wrapper."""
        live = _LiveHandler(handler, self._live_context, self._component, self._progress)
        with super().read_messages(live) as params:  # type: ignore[arg-type]
            yield params


class SupervisedPipesClient(dg.PipesSubprocessClient):
    """`PipesSubprocessClient` for processes that stop on SIGTERM and must never outlive their run."""

    def run(  # type: ignore[override]
        self,
        *,
        context: dg.OpExecutionContext,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        extras: dict[str, Any] | None = None,
        cwd: str | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        """Run `command` in a Pipes session until it exits; SIGTERM then SIGKILL it if the run is cancelled."""
        with dg.open_pipes_session(
            context=context, context_injector=self.context_injector, message_reader=self.message_reader, extras=extras
        ) as session:
            process = subprocess.Popen(  # noqa: S603 - argv built by the platform
                list(command),
                cwd=cwd or self.cwd,
                env={**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()},
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets the parent-death signal
            )
            context.log.info(f"started pid {process.pid}: {' '.join(command)}")
            context.instance.add_run_tags(context.run_id, {PID_TAG: str(process.pid)})
            try:
                code = process.wait()
            except BaseException:
                context.log.info(f"run interrupted: sending SIGTERM to pid {process.pid}")
                process.terminate()
                try:
                    process.wait(timeout=self.termination_timeout_seconds)
                except subprocess.TimeoutExpired:
                    context.log.warning(f"pid {process.pid} ignored SIGTERM; sending SIGKILL")
                    process.kill()
                    process.wait()
                raise
            if code != 0:
                raise dg.Failure(description=f"pid {process.pid} ({' '.join(command[1:])}) exited with code {code}")
        return dg.PipesClientCompletedInvocation(session)


def run_supervised(
    context: dg.OpExecutionContext,
    component: str,
    command: list[str],
    env: dict[str, str],
    progress_asset: str | None = None,
    progress_every_s: float = 60.0,
) -> None:
    """Run one supervised process for the length of this op, reporting its progress live; raise if it fails.

    With `progress_asset`, per-batch messages also become materialisations of that asset (at most one
    every `progress_every_s` seconds) carrying the running totals.
    """
    progress = _BatchProgress(progress_asset, progress_every_s) if progress_asset else None
    reader = LivePipesMessageReader(context, component, progress)
    client = SupervisedPipesClient(message_reader=reader, termination_timeout_seconds=45)
    client.run(context=context, command=command, env={**env, "PYTHONUNBUFFERED": "1"})
