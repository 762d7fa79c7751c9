"""Ingestion and power mapping on every core or a Dask cluster: the same tables, reports and
logs as one model after another, each raw file still read once."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from benchmarks.generate_jetson import generate_run, write_idle_power, write_raw_model
from kedro_datasets.json import JSONDataset
from kedro_datasets.partitions import PartitionedDataset

from power_modelling import parallel
from power_modelling.parallel import ParallelSettings, Prefetcher
from power_modelling.pipelines.ingestion.nodes import build_report, ingest_models, read_idle_power
from power_modelling.pipelines.power_mapping.nodes import map_power, report_power_mapping

#: Reads of each raw file, counted by ``CountingLoader`` (in this process).
READS: Counter = Counter()
INGESTED = ("layer_windows", "power_samples", "layer_descriptions", "run_metadata", "reports")


class CountingLoader:
    """A raw file's loader that counts its reads (picklable: Dask workers get it too)."""

    def __init__(self, load: Callable[[], bytes], key: str) -> None:
        self.load, self.key = load, key
        self.__self__ = load.__self__  # its dataset: the file's size tells the work ahead

    def __call__(self) -> bytes:
        READS[self.key] += 1
        return self.load()


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four generated Jetson models, one whose latency file is unusable and one without its
    engine description (skipped before parsing)."""
    raw = tmp_path_factory.mktemp("raw") / "study"
    write_idle_power(raw)
    for seed, model in enumerate(("net_a", "net_b", "net_c", "net_d")):
        write_raw_model(generate_run(60, 12, seed=seed), raw, model)
    broken = write_raw_model(generate_run(10, 3, seed=9), raw, "net_e")
    (broken / "trt_profiling" / "trt_layer_latency.json").write_text('["not", "layers"]')
    missing = write_raw_model(generate_run(10, 3, seed=8), raw, "net_f")
    (missing / "trt_profiling" / "trt_engine_info.json").unlink()
    return raw


def _partitions(path: Path, dataset: str | dict, suffix: str) -> PartitionedDataset:
    return PartitionedDataset(path=str(path), dataset=dataset, filename_suffix=suffix)


def _run(raw: Path, out: Path, scheduler: dict | None) -> dict[str, int]:
    """Ingestion and power mapping as ``kedro run`` chains them (the catalog's dataset types,
    partitions saved one at a time); returns how often each raw file was read."""
    READS.clear()
    raw_files = PartitionedDataset(
        path=str(raw), dataset="power_modelling.datasets.RawBytesDataset"
    ).load()
    raw_files = {key: CountingLoader(load, key) for key, load in raw_files.items()}
    params = {"max_reported_lines": 5, "max_reported_names": 50}
    outputs = ingest_models(raw_files, "study", params, scheduler)
    for name, partitions in zip(INGESTED, outputs, strict=True):
        json_like = name in ("run_metadata", "reports")
        dataset = "json.JSONDataset" if json_like else "pandas.ParquetDataset"
        _partitions(out / name, dataset, ".json" if json_like else ".parquet").save(partitions)
    idle = read_idle_power(raw_files, "study")
    reports = _partitions(out / "reports", "json.JSONDataset", ".json").load()
    JSONDataset(filepath=str(out / "ingestion.json")).save(build_report(reports, idle))
    tables, mapping_reports = map_power(
        *(
            _partitions(out / name, "pandas.ParquetDataset", ".parquet").load()
            for name in ("power_samples", "layer_windows", "layer_descriptions")
        ),
        idle,
        {"min_samples_per_layer": 10},
        scheduler,
    )
    _partitions(out / "layerwise", "pandas.ParquetDataset", ".parquet").save(tables)
    quality = report_power_mapping(mapping_reports)
    JSONDataset(filepath=str(out / "power_mapping.json")).save(quality)
    return dict(READS)


def _same_outputs(first: Path, second: Path) -> None:
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert Path("layerwise/net_d.parquet") in files and Path("ingestion.json") in files
    for path in files:
        if path.suffix == ".parquet":
            pd.testing.assert_frame_equal(
                pd.read_parquet(first / path), pd.read_parquet(second / path)
            )
        else:
            assert json.loads((first / path).read_text()) == json.loads(
                (second / path).read_text()
            ), path


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    """What was logged, without the line saying where the models run."""
    return [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if r.name.startswith("power_modelling")
        and not r.getMessage().startswith(("Parsing ", "Mapping "))
        and "mapped in" not in r.getMessage()  # its seconds differ
    ]


@pytest.fixture(scope="module")
def sequential(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list]:
    out = tmp_path_factory.mktemp("sequential")
    handler, package = _Records(), logging.getLogger("power_modelling")
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        reads = _run(raw, out, {"scheduler": "sequential"})
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
    return out, reads, handler.messages


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(("Parsing ", "Mapping ")) and "mapped in" not in message:
            self.messages.append((record.name, record.levelno, message))


def test_the_sequential_run_reads_each_raw_file_once(sequential: tuple) -> None:
    out, reads, messages = sequential
    assert set(reads.values()) == {1}
    # every file of the parsed models; of net_e (unusable latency file) not its power log
    assert "net_a/trt_profiling/trt_layer_latency.json" in reads
    assert "net_e/net_e_power_log.log" not in reads
    report = json.loads((out / "ingestion.json").read_text())
    assert report["_summary"]["models_skipped"] == 2
    assert any("Skipping model net_e" in m for _, _, m in messages)


def test_processes_give_the_sequential_outputs(
    raw: Path,
    tmp_path: Path,
    sequential: tuple,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "MIN_PROCESS_WORK_S", 0.0)  # tiny models: processes anyway
    with caplog.at_level(logging.INFO, logger="power_modelling"):
        _run(raw, tmp_path, {"scheduler": "processes", "workers": 2})
    _same_outputs(sequential[0], tmp_path)
    assert _messages(caplog) == sequential[2]  # parsers' warnings come back from the workers
    assert "Parsing 5 models in 2 processes" in caplog.text


def test_a_dask_cluster_gives_the_sequential_outputs_reading_each_file_once(
    raw: Path, tmp_path: Path, sequential: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    from distributed import LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        caplog.at_level(logging.INFO, logger="power_modelling"),
    ):
        reads = _run(raw, tmp_path, {"scheduler": cluster.scheduler_address})
    _same_outputs(sequential[0], tmp_path)
    # each file once, as sequentially; the power log of net_e (unusable latency file) may have
    # been parsed ahead, before its latency file was found unusable (its result is dropped):
    # its power log is read ahead with those of the models whose windows are being checked
    skipped_log = "net_e/net_e_power_log.log"
    assert reads.pop(skipped_log, 1) == 1
    assert reads == sequential[1]
    assert _messages(caplog) == sequential[2]
    assert f"Mapping 5 models in the Dask cluster at {cluster.scheduler_address}" in caplog.text


def test_prefetching_keeps_a_bounded_window_and_any_order() -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        settings = ParallelSettings.of({"scheduler": cluster.scheduler_address, "prefetch": 2})
        tasks = {m: _Square(i) for i, m in enumerate("abcde")}
        prefetcher = Prefetcher(tasks, settings)
        assert prefetcher.take("a") == 0
        assert len(prefetcher._futures) == 2  # b and c computed ahead, no more
        assert prefetcher.take("e") == 16  # out of order: computed when asked
        assert [prefetcher.take(m) for m in "bcd"] == [1, 4, 9]
        with pytest.raises(RuntimeError, match="taken already"):
            prefetcher.take("b")
        assert prefetcher._pool is None  # everything taken: the client is closed


class _Square:
    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value**2


def test_little_work_stays_in_this_process(raw: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="power_modelling"):
        _run(raw, tmp_path, {"scheduler": "processes", "workers": 2})
    assert "Parsing 5 models in this process (too little work for worker processes)" in (
        caplog.text
    )


def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "DASK_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ValueError, match="parallel.workers must be a positive integer"):
        ParallelSettings.of({"scheduler": "processes", "workers": 0})
    settings = ParallelSettings.of({"scheduler": "tcp://127.0.0.1:1"})
    with pytest.raises(RuntimeError, match="no Dask scheduler answers there"):
        Prefetcher({"a": _Square(1), "b": _Square(2)}, settings).take("a")
