"""Pipeline health page: heartbeats (each producer's, the stream's) and failed runs, freshness, throughput, lag, dead letters."""

from __future__ import annotations

import logging
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from stock_platform.config import Settings
from stock_platform.dashboard import health_queries
from stock_platform.dashboard.connections import DataUnavailable
from stock_platform.dashboard.health import (
    DEAD_LETTER_KINDS,
    TICK_AMBER_S,
    TICK_RED_S,
    ComponentState,
    Level,
    age_level,
    dagster_runs,
    dead_letter_level,
    heartbeat_state,
    kafka_lag,
    run_level,
)
from stock_platform.dashboard.hot import heartbeats
from stock_platform.dashboard.run_health import FailureState, SupervisorDecision, failure_state
from stock_platform.dashboard.views.common import format_age, settings, unavailable_banner
from stock_platform.kafka_options import KafkaSecurity
from stock_platform.storage.heartbeats import PRODUCER, STREAM, Heartbeats

__all__ = ["render"]

logger = logging.getLogger(__name__)


COMPONENTS = (PRODUCER, STREAM)


def _failure_line(state: FailureState) -> str:
    """One line on a component's failed runs: the state, the streak and wait, and the last error."""
    if state.level is Level.GREEN:
        return f"{state.level.icon} **runs:** {state.word}"
    streak = f"{state.in_a_row} failed runs in a row" if state.in_a_row > 1 else f"{state.last_hour} failed in the last hour"
    wait = f", next launch in about {state.wait_s:,.0f} s" if state.wait_s > 0 else ""
    return f"{state.level.icon} **runs: {state.word}** ({streak}{wait}); last {format_age(state.age_s)} ago: {state.reason}"


def _beating(component: str, beats: Heartbeats) -> dict[str, dict[str, str]]:
    """The beats to draw a card for, by name: every producer's (one card saying none when none beats), the stream's."""
    if component == STREAM:
        return {STREAM: beats.stream}
    return {f"{PRODUCER} `{pid}`": beat for pid, beat in beats.producers.items()} or {PRODUCER: {}}


def _card(name: str, beat: dict[str, str] | None, component: str, now_ms: int) -> None:
    """One bordered card: the beat's light and why, and its counters; `beat` None when Redis could not be read."""
    with st.container(border=True):
        if beat is None:
            st.markdown(f"### {Level.UNKNOWN.icon} {name}: heartbeat unknown")
            return
        state: ComponentState = heartbeat_state(component, beat, now_ms)
        st.markdown(f"### {state.level.icon} {name}: {state.level.value}")
        st.caption(state.detail)
        counters = {k: v for k, v in beat.items() if not k.endswith("_ms")}
        if counters:
            st.dataframe(pd.DataFrame([counters]), hide_index=True)


def _components(config: Settings) -> None:
    st.subheader("Producers and stream job")
    beats = failures = None
    decisions: dict[str, SupervisorDecision] = {}
    try:
        beats = heartbeats(config.redis_url, config.redis_key_prefix)
    except DataUnavailable as e:
        unavailable_banner(e)
    try:
        failures = health_queries.recent_run_failures(config.postgres_dsn, COMPONENTS)
        decisions = health_queries.supervisor_decisions(config.postgres_dsn, COMPONENTS)
    except DataUnavailable:
        pass  # the PostgreSQL banner below says why
    if beats is None and failures is None:
        return
    now_ms = int(time.time() * 1000)
    for column, component in zip(st.columns(2), COMPONENTS, strict=True):
        with column:
            cards = {component: None} if beats is None else _beating(component, beats)
            for name, beat in cards.items():
                _card(name, beat, component, now_ms)
            if failures is not None:
                runs = failure_state(failures[component], decisions.get(component))
                st.markdown(_failure_line(runs))
                if runs.supervisor:
                    st.caption(runs.supervisor)


def _freshness(config: Settings) -> None:
    st.subheader("Last event per symbol")
    last = health_queries.last_event_per_symbol(config.postgres_dsn)
    if last.empty:
        st.info("No ticks in PostgreSQL yet: the stream job has not written any rows.")
        return
    levels = [age_level(a, TICK_AMBER_S, TICK_RED_S) for a in last["age_s"]]
    worst = max(levels, key=[Level.GREEN, Level.UNKNOWN, Level.AMBER, Level.RED].index)
    st.markdown(f"**{worst.icon} data freshness: {worst.value}** (green < {TICK_AMBER_S:g} s, amber < {TICK_RED_S:g} s)")
    table = pd.DataFrame({
        "status": [f"{lv.icon} {lv.value}" for lv in levels],
        "symbol": last["symbol"],
        "last event (UTC)": last["event_time"],
        "age": [format_age(a) for a in last["age_s"]],
        "price": last["price"],
    })  # fmt: skip
    st.dataframe(table, hide_index=True)


def _throughput(config: Settings) -> None:
    st.subheader("Rows per minute (last 30 minutes)")
    per_minute = health_queries.rows_per_minute(config.postgres_dsn, 30)
    if per_minute.empty:
        st.info("No stream batches committed in the last 30 minutes.")
        return
    fig = go.Figure(go.Bar(x=per_minute["minute"], y=per_minute["inserted"], name="inserted"))
    fig.add_trace(go.Bar(x=per_minute["minute"], y=per_minute["dead_letters"], name="dead letters"))
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, barmode="stack")
    st.plotly_chart(fig, key="rows_per_minute")


def _lag(config: Settings) -> None:
    st.subheader("Kafka consumer lag")
    committed, committed_at = health_queries.committed_offsets(config.postgres_dsn, config.kafka_topic)
    lag = kafka_lag(config.kafka_bootstrap_servers, config.kafka_topic, committed, KafkaSecurity.of(config))
    total = "unknown" if lag.total is None else f"{lag.total:,} messages"
    st.markdown(f"**{lag.level.icon} topic `{config.kafka_topic}`: {total}**")
    if lag.error:
        st.caption(f"lag unknown: {lag.error}")
        return
    rows = [
        {"partition": p, "end offset": lag.end_offsets[p], "committed": committed.get(p, 0), "lag": n}
        for p, n in sorted(lag.per_partition.items())
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(f"committed with the batch of {committed_at:%Y-%m-%d %H:%M:%S} UTC")


def _dead_letters(config: Settings) -> None:
    st.subheader("Dead letters")
    summary = health_queries.dead_letter_summary(config.postgres_dsn, 10)
    level = dead_letter_level(summary.by_kind, config.dead_letters_warn_per_hour)
    st.markdown(f"**{level.icon} {summary.total:,} in total, {summary.last_hour:,} in the last hour**")
    st.caption(
        f"red above {config.dead_letters_warn_per_hour:,} an hour (DEAD_LETTERS_WARN_PER_HOUR), "
        "or when PostgreSQL refused a record the contract accepted"
    )
    kinds = [*DEAD_LETTER_KINDS, *sorted(set(summary.by_kind) - set(DEAD_LETTER_KINDS))]
    st.dataframe(
        pd.DataFrame([
            {"kind": kind, "meaning": DEAD_LETTER_KINDS.get(kind, ""), "last hour": summary.by_kind.get(kind, (0, 0))[0],
             "total": summary.by_kind.get(kind, (0, 0))[1]}
            for kind in kinds
        ]),
        hide_index=True,
    )  # fmt: skip
    if summary.latest.empty:
        st.caption("No dead letters: every record was stored or counted as an exact duplicate.")
    else:
        st.dataframe(summary.latest, hide_index=True)


def _dagster(config: Settings) -> None:
    st.subheader("Dagster runs")
    runs = dagster_runs(config.dagster_url)
    if runs.error:
        st.caption(runs.error)
        return
    for job, run in runs.supervised.items():
        level, word = run_level(run)
        since = ""
        if run and run.get("startTime"):
            since = f", since {pd.Timestamp(float(run['startTime']), unit='s'):%Y-%m-%d %H:%M:%S} UTC"
        run_id = f" (run `{run['runId'][:8]}`{since})" if run else ""
        st.markdown(f"**{level.icon} {job}: {word}**{run_id}")
    if runs.recent:
        st.caption("Newest runs of any job")
        st.dataframe(pd.DataFrame(runs.recent), hide_index=True)
    else:
        st.caption("Dagster has no runs yet.")


def _body(config: Settings) -> None:
    _components(config)
    try:
        _freshness(config)
        left, right = st.columns(2)
        with left:
            _throughput(config)
            _lag(config)
        with right:
            _dead_letters(config)
            _dagster(config)
    except DataUnavailable as e:
        unavailable_banner(e)


def render() -> None:
    """Draw the health page; it re-runs alone every DASHBOARD_REFRESH_SECONDS."""
    config = settings()
    st.title("Pipeline health")

    @st.fragment(run_every=max(1.0, config.dashboard_refresh_seconds))
    def body() -> None:
        _body(config)

    body()
