"""The stream job as it was before its work moved to the executors: the benchmarks' baseline.

Each micro-batch is collected onto the driver (`toPandas()`), then parsed and
written there by one Python process, with the same parser and the same sink as
the real job; the executors only read Kafka. Benchmarks run it beside the real
job to show what moving the work to the executors buys.

`python -m bench.driver_path [stream options]` takes the options of `stock-platform stream`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from stock_platform.config import load_settings
from stock_platform.streaming.job import add_stream_arguments, options_from_args, run_stream
from stock_platform.streaming.parse import records_from_pandas
from stock_platform.streaming.processor import BatchProcessor
from stock_platform.streaming.summary import TaskSummary
from stock_platform.streaming.tasks import TaskConfig, kafka_columns, write_records

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["DriverPathProcessor", "main"]


class DriverPathProcessor(BatchProcessor):
    """A `BatchProcessor` that collects the batch on the driver and writes it there."""

    def run_tasks(self, batch_df: DataFrame, config: TaskConfig) -> list[TaskSummary]:
        """The whole batch through the driver: collect, parse, write, in this process."""
        return write_records(config, records_from_pandas(kafka_columns(batch_df).toPandas()))


def main(argv: list[str] | None = None) -> int:
    """Run the driver-path job with `stock-platform stream`'s options."""
    parser = argparse.ArgumentParser(prog="python -m bench.driver_path")
    add_stream_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    return run_stream(settings, options_from_args(args, settings), processor_type=DriverPathProcessor)


if __name__ == "__main__":
    sys.exit(main())
