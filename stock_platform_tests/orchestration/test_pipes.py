"""The Pipes plumbing of the supervised jobs, with a small Pipes script standing in for the stream job."""

import sys
from pathlib import Path

import dagster as dg

from stock_platform.orchestration.pipes import PID_TAG, run_supervised
from stock_platform.orchestration.supervised import stream_command

FAKE = str(Path(__file__).with_name("fake_supervised.py"))


class FakeConfig(dg.Config):
    exit_code: int = 0


@dg.op
def run_fake(context: dg.OpExecutionContext, config: FakeConfig) -> None:
    run_supervised(
        context, "fake", [sys.executable, FAKE, str(config.exit_code)], {}, progress_asset="stock_prices", progress_every_s=0
    )


@dg.job
def fake_job() -> None:
    run_fake()


def test_progress_and_materialisation_reach_the_run() -> None:
    with dg.instance_for_test() as instance:
        result = fake_job.execute_in_process(instance=instance)
        assert result.success
        messages = [r.user_message for r in instance.all_logs(result.run_id)]
        assert any("[fake batch] kind=stream_batch batch_id=1 rows_in=10 duplicates=1" in m for m in messages)
        assert any("fake stream started" in m for m in messages)
        materializations = [
            r.asset_materialization for r in instance.all_logs(result.run_id) if r.asset_materialization is not None
        ]
        # One per batch while it runs (running totals), then the process's own on exit.
        assert [m.asset_key for m in materializations] == [dg.AssetKey("stock_prices")] * 3
        assert materializations[1].metadata["total_rows_in"].value == 20
        assert materializations[1].metadata["total_duplicates"].value == 2
        assert materializations[1].metadata["last_batch_id"].value == 1
        assert materializations[2].metadata["total_inserted"].value == 18
        assert instance.get_run_by_id(result.run_id).tags[PID_TAG].isdigit()


def test_a_failing_process_fails_the_run() -> None:
    with dg.instance_for_test() as instance:
        result = fake_job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {"run_fake": {"config": {"exit_code": 3}}}}
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "exited with code 3" in failure.event_specific_data.error.message


def test_stream_command_uses_this_interpreter() -> None:
    assert stream_command(["--available-now"]) == [sys.executable, "-m", "stock_platform.cli", "stream", "--available-now"]
