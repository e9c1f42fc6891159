"""The job's cluster-facing settings: extra Spark conf, the checkpoint as a URI, and the code shipped to executors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import stock_platform
from stock_platform.config import Settings
from stock_platform.streaming.job import StreamOptions, checkpoint_for
from stock_platform.streaming.session import parse_spark_conf
from stock_platform.streaming.shipping import code_archive, ships_to_executors


def test_spark_conf_pairs_are_parsed_and_a_bad_pair_is_named() -> None:
    text = " spark.driver.maxResultSize=1m; spark.executor.extraJavaOptions=-Da=b -Dc=d ;"
    assert parse_spark_conf(text) == {
        "spark.driver.maxResultSize": "1m",
        "spark.executor.extraJavaOptions": "-Da=b -Dc=d",
    }
    assert parse_spark_conf("") == {}
    with pytest.raises(ValueError, match="'spark.ui.enabled'"):
        parse_spark_conf("spark.ui.enabled")


def test_a_checkpoint_uri_goes_to_spark_untouched_and_a_path_is_made_absolute(tmp_path: Path) -> None:
    settings = Settings.defaults().replace(data_dir=tmp_path, kafka_topic="quotes")
    assert checkpoint_for(settings, StreamOptions()) == str(tmp_path / "checkpoints" / "quotes")
    for uri in ("s3a://bucket/stock/cp", "hdfs://nn:8020/cp", "file:///var/cp"):
        assert checkpoint_for(settings.replace(spark_checkpoint_location=uri), StreamOptions()) == uri
    assert checkpoint_for(settings, StreamOptions(checkpoint="relative/cp")) == str(Path("relative/cp").resolve())


def test_only_a_cluster_gets_the_environment_shipped() -> None:
    assert not ships_to_executors("local[2,4]") and not ships_to_executors("local")
    assert ships_to_executors("spark://127.0.0.1:7077") and ships_to_executors("k8s://https://api:6443")


def test_the_code_archive_holds_the_package_and_is_rebuilt_only_when_it_changes(tmp_path: Path) -> None:
    first = code_archive(tmp_path)
    assert code_archive(tmp_path) == first  # same files, same archive
    names = set(zipfile.ZipFile(first).namelist())
    package = Path(stock_platform.__file__).parent
    expected = {f"stock_platform/{p.relative_to(package)}" for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert names == expected and "stock_platform/streaming/tasks.py" in names


def test_tasks_per_batch_follow_the_configuration_not_the_executors_of_the_moment() -> None:
    from stock_platform.streaming.job import min_tasks_per_batch

    settings = Settings.defaults()
    assert min_tasks_per_batch(settings.replace(spark_master="local[2,4]"), None) == 4
    assert min_tasks_per_batch(settings.replace(spark_master="local[3]"), None) == 6
    assert min_tasks_per_batch(settings.replace(spark_master="spark://h:7077"), "8") == 16
    cluster = settings.replace(spark_master="spark://127.0.0.1:7077", spark_workers=2, spark_worker_cores=1)
    assert min_tasks_per_batch(cluster, None) == 4
    assert min_tasks_per_batch(settings.replace(spark_master="k8s://https://api:6443"), None) == 0
    assert min_tasks_per_batch(settings.replace(spark_min_partitions=5), "8") == 5
