"""Packaging for stock-platform: one package, a `dev` extra, one console command."""

from setuptools import find_packages, setup

setup(
    name="stock-platform",
    version="0.1.0",
    description="Real-time stock market data platform: Finnhub -> Kafka -> Spark -> PostgreSQL/Redis -> Streamlit, run by Dagster.",
    python_requires=">=3.11,<3.13",
    # The numbered migrations stay in the top-level sql/ and install as the package stock_platform.sql, so
    # every install, editable or not, reads them with importlib.resources (sql/__init__.py is there because
    # setuptools' editable finder imports a remapped package only through its __init__.py).
    packages=[*find_packages(include=["stock_platform", "stock_platform.*"]), "stock_platform.sql"],
    package_dir={"stock_platform.sql": "sql"},
    package_data={"stock_platform.sql": ["*.sql"]},
    install_requires=[
        # The dagster family must move together: unpinned, pip picks a 2021
        # dagster-postgres that fails to import.
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-graphql==1.13.27",
        "dagster-postgres==0.29.27",
        "kafka-python>=2.2,<4",
        "pyspark==4.1.1",
        "psycopg2-binary>=2.9",
        "redis>=5",
        # C parser for Redis replies: the dashboard reads a whole watchlist of sparklines per refresh.
        "hiredis>=2",
        "streamlit>=1.40",
        "plotly>=5.18",
        # PySpark 4.3 warns on pandas 3.
        "pandas>=2.1,<3",
        "pyarrow>=15",
        "requests>=2.31",
        # One declaration per setting: typed loading from the environment and .env (parsed, not sourced),
        # secrets as SecretStr, and the schema the docs and Dagster resources are written from.
        "pydantic>=2.11",
        "pydantic-settings>=2.7,<3",
        # A maintained asyncio WebSocket client and server: Finnhub's trade
        # stream and the fake Finnhub both speak it.
        "websockets>=13",
        # The quote producer: librdkafka batches, compresses and retries in C threads outside
        # the GIL, leaving the Python process free to parse (bench/bench_producer.py compares kafka-python).
        "confluent-kafka>=2.6,<3",
        # dagster-postgres needs SQLAlchemy to drive PostgreSQL through psycopg2: SQLAlchemy 2.1 maps
        # postgresql:// URLs (DAGSTER_POSTGRES_URL) to psycopg 3, under which dagster-postgres's
        # parameterised NOTIFY fails and the daemon's run storage breaks.
        "sqlalchemy>=2.0,<2.1",
        # Packs the small Python environment that a Spark cluster's executors unpack (spark.archives), as
        # Spark's Python package management guide documents; our own tar of a venv would miss its path rewriting.
        "venv-pack>=0.2",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "ruff>=0.6",
            # `make lint` type-checks the package (mypy.ini); the stubs cover the two untyped libraries it leans on most.
            "mypy>=1.10",
            "pandas-stubs>=2.1,<3",
            "types-requests>=2.31",
            "hypothesis>=6.100",
            # CPU time per process for bench/bench_stream_cpu.py (portable /proc reading).
            "psutil>=5.9",
            # Sampling profiler for "profile and say what holds it back" when a benchmark misses its target
            # (it found the per-task pyspark.zip re-read behind streaming/worker_patch.py).
            "py-spy>=0.3",
            # Drives Debian's headless Chromium in the dashboard browser test (its driver ships in the wheel).
            "playwright>=1.45",
        ],
    },
    entry_points={"console_scripts": ["stock-platform=stock_platform.cli:main"]},
)
