"""A stand-in for `stock-platform stream` speaking Dagster Pipes: `python fake_supervised.py EXIT_CODE [--wait]`.

Reports two batches and one `stock_prices` materialisation, then exits with
EXIT_CODE, or with --wait writes its pid to stdout and waits for SIGTERM.
"""

import signal
import sys
import threading

from dagster_pipes import open_dagster_pipes


def main() -> int:
    code = int(sys.argv[1])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_dagster_pipes() as pipes:
        pipes.log.info("fake stream started")
        for batch_id in range(2):
            pipes.report_custom_message({"kind": "stream_batch", "batch_id": batch_id, "rows_in": 10, "duplicates": 1})
        if "--wait" in sys.argv:
            print("waiting for SIGTERM", flush=True)
            stop.wait(120)
            pipes.log.info("fake stream got SIGTERM")
        pipes.report_asset_materialization(asset_key="stock_prices", metadata={"total_inserted": 18, "total_batches": 2})
    return code


if __name__ == "__main__":
    sys.exit(main())
