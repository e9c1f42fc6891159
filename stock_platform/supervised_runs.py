"""What Dagster says about the supervised jobs' runs, over its GraphQL API: for the health page and `platform status`.

One POST to the webserver (DAGSTER_URL) and no Dagster import: the dashboard
must not load Dagster, and the same question asked twice would drift apart.
Kept outside both packages, as `liveness` is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["RUNS_QUERY", "SUPERVISED_JOBS", "DagsterRuns", "fetch_supervised_runs"]

logger = logging.getLogger(__name__)

# The long-running jobs Dagster supervises, by component: each one's newest run is the one that counts.
SUPERVISED_JOBS = ("producer_job", "streaming_job")

_RUN_FIELDS = "__typename ... on Runs { results { runId jobName status startTime endTime } } ... on PythonError { message }"
RUNS_QUERY = (
    "{ "
    + " ".join(f'{job}: runsOrError(filter: {{pipelineName: "{job}"}}, limit: 1) {{ {_RUN_FIELDS} }}' for job in SUPERVISED_JOBS)
    + f" recent: runsOrError(limit: 5) {{ {_RUN_FIELDS} }} }}"
)


@dataclass(frozen=True)
class DagsterRuns:
    """The newest run of each supervised job, the newest runs of any job, or why Dagster could not be asked.

    A run is Dagster's dict: runId, jobName, status (STARTED, QUEUED, FAILURE ...), startTime, endTime.
    """

    supervised: dict[str, dict | None]
    recent: list[dict]
    error: str = ""


def fetch_supervised_runs(url: str, timeout_s: float = 1.5) -> DagsterRuns:
    """Ask Dagster's GraphQL API at `url` for the supervised jobs' newest runs and the five newest runs overall."""
    import requests

    try:
        reply = requests.post(f"{url}/graphql", json={"query": RUNS_QUERY}, timeout=timeout_s)
        reply.raise_for_status()
        data = reply.json()["data"]
        results = {key: (data.get(key) or {}).get("results") for key in (*SUPERVISED_JOBS, "recent")}
    except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError) as e:
        empty = dict.fromkeys(SUPERVISED_JOBS)
        return DagsterRuns(empty, [], f"Dagster not reachable at {url} ({type(e).__name__})")
    lists = {key: runs for key, runs in results.items() if runs is not None}
    if len(lists) < len(results):
        return DagsterRuns(dict.fromkeys(SUPERVISED_JOBS), [], "Dagster answered without a run list")
    supervised = {job: (lists[job][0] if lists[job] else None) for job in SUPERVISED_JOBS}
    return DagsterRuns(supervised, lists["recent"])
