"""Ingestion nodes on hand-made raw folders (both dialects, bad model runs) and a real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.mapping import map_power_to_windows
from power_modelling.core.raw.latency import parse_layer_latency
from power_modelling.core.raw.plausibility import DEFAULT_RANGES
from power_modelling.core.raw.power_log import parse_power_log
from power_modelling.pipelines.ingestion.nodes import (
    build_report,
    ingest_models,
    read_idle_power,
)
from tests.helpers import BUNDLED_RAW, make_project, run_kedro

KEDRO = str(Path(sys.executable).parent / "kedro")

PARAMS = {"max_reported_lines": 5, "max_reported_names": 50}
TS1, TS2 = "20241121-05:20:04.100000", "20241121-05:20:04.200000"


def _layer(name: str, layer_type: str = "CaskConvolution") -> dict:
    return {
        "Name": name,
        "LayerType": layer_type,
        "ParameterType": "Convolution",
        "Inputs": [{"Dimensions": [1, 3, 8, 8], "Format/Datatype": "FP16"}],
        "Outputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "FP16"}],
        "Kernel": [3, 3],
        "OutMaps": 4,
    }


def _jetson_files(model: str) -> dict[str, bytes]:
    return {
        f"{model}/{model}_power_log.log": (
            f"{TS1},5000.0,1000.0\n\n{TS2},5000.0,1200.0\n20241121-05:20:04.3".encode()
        ),
        f"{model}/{model}_tensorrt.json": json.dumps(
            {"model": model, "avg_latency": 0.002}
        ).encode(),
        f"{model}/trt_profiling/trt_engine_info.json": json.dumps(
            {"Layers": [_layer("conv1"), _layer("reformat", "Reformat")]}
        ).encode(),
        f"{model}/trt_profiling/trt_layer_latency.json": json.dumps(
            {"conv1": [[0.05, TS1], [0.05, TS2]], "extra": [[0.01, TS2]]}
        ).encode(),
    }


def _nvml_files(model: str) -> dict[str, bytes]:
    return {
        f"{model}/{model}_power_log.log": f"{TS1},250000\n{TS2},251000\n".encode(),
        f"{model}/{model}_benchmark.json": json.dumps(
            {
                "config": {"model": model, "dtype": "float16"},
                "whole_model": {
                    "latency_ms": 0.5,
                    "avg_power_mw_counter": 200000.0,
                    "energy_mj": 1000.0,
                    "iterations": 10000,
                },
            }
        ).encode(),
        f"{model}/layer_energy.json": json.dumps(
            {"conv1": {"avg_power_mw_counter": 150000.0, "latency_ms": 0.01}}
        ).encode(),
        f"{model}/trt_profiling/trt_engine_info.json": json.dumps(
            {"Layers": [_layer("conv1", "Conv2d")]}
        ).encode(),
        f"{model}/trt_profiling/trt_layer_latency.json": json.dumps(
            {"conv1": [[0.01, TS1, 100], [0.01, TS2, 100]]}
        ).encode(),
    }


def _loaders(files: dict[str, bytes]) -> dict:
    return {path: (lambda content=content: content) for path, content in files.items()}


def _ingest(files: dict[str, bytes]) -> tuple[dict, dict, dict, dict, dict]:
    """The node as the pipeline runs it: every partition loader called in output order
    (windows, samples, descriptions, metadata, reports)."""
    windows, power, descriptions, metadata, reports = ingest_models(
        _loaders(files), "fixture", PARAMS
    )
    called = [{m: load() for m, load in table.items()} for table in (windows, power)]
    rest = [{m: load() for m, load in t.items()} for t in (descriptions, metadata, reports)]
    return called[1], called[0], *rest


def test_both_dialects_and_every_bad_model_case(caplog):
    files = {**_jetson_files("jet"), **_nvml_files("nv")}
    files["idling_power.json"] = b'{"avg_idle_power": 4234560.5, "unit": "microwatt"}'
    files["README.md"] = b"ignored"
    missing = _nvml_files("no_latency")
    del missing["no_latency/trt_profiling/trt_layer_latency.json"]
    broken = _nvml_files("broken")
    broken["broken/trt_profiling/trt_engine_info.json"] = b'{"Layers": ['
    old = _nvml_files("old")
    old["old/trt_profiling/trt_layer_latency.json"] = b'{"conv1": [0.01, 0.02]}'
    files.update({**missing, **broken, **old})

    power, windows, descriptions, metadata, reports = _ingest(files)

    assert sorted(power) == ["jet", "nv", "old"]
    assert power["jet"]["power_uw"].tolist() == [5_000_000.0, 6_000_000.0]
    assert power["nv"]["power_uw"].tolist() == [250_000_000.0, 251_000_000.0]
    assert windows["jet"]["layer_name"].tolist() == ["conv1", "conv1", "extra"]
    assert windows["nv"]["repeats"].tolist() == [100, 100]
    assert descriptions["jet"]["layer_name"].tolist() == ["conv1", "reformat"]

    jet = reports["jet"]
    assert jet["dialect"] == "jetson" and jet["has_power_windows"]
    assert (jet["power_log"]["valid"], jet["power_log"]["blank"]) == (2, 1)
    assert (jet["power_log"]["malformed"], jet["power_log"]["first_malformed_lines"]) == (1, [4])
    assert jet["power_log"]["truncated_last_line"]
    assert jet["latency"]["windows"] == 3
    assert jet["layers"]["in_latency_not_in_engine"] == {"count": 1, "names": ["extra"]}
    assert jet["layers"]["in_engine_not_in_latency"] == {"count": 1, "names": ["reformat"]}
    assert "data/01_raw/fixture/jet: 1 layer(s) not in the engine info: ['extra']" in caplog.text

    assert reports["nv"]["dialect"] == "nvml" and reports["nv"]["dialect_notes"] == []
    assert metadata["nv"] == {
        "model": "nv",
        "dialect": "nvml",
        "has_power_windows": True,
        "config": {"model": "nv", "dtype": "float16"},
        "whole_model": {"latency_ms": 0.5, "avg_power_w": 200.0, "energy_mj": 0.1},
        "layer_energy": {"conv1": {"avg_power_w": 150.0, "latency_ms": 0.01}},
    }
    assert metadata["jet"]["whole_model"] == {
        "latency_ms": 2.0,
        "avg_power_w": None,
        "energy_mj": None,
    }

    assert reports["old"]["latency"]["form"] == "bare"
    assert not reports["old"]["has_power_windows"] and not metadata["old"]["has_power_windows"]
    assert windows["old"]["end"].isna().all()

    assert reports["no_latency"] == {
        "skipped": True,
        "reason": "data/01_raw/fixture/no_latency: missing trt_profiling/trt_layer_latency.json",
    }
    assert reports["broken"]["skipped"]
    assert reports["broken"]["reason"].startswith(
        "data/01_raw/fixture/broken/trt_profiling/trt_engine_info.json: unreadable JSON"
    )
    assert "Skipping model no_latency: data/01_raw/fixture/no_latency: missing" in caplog.text

    idle = read_idle_power(_loaders(files), "fixture")
    assert idle == {
        "avg_idle_power_uw": 4234560.5,
        "source": "data/01_raw/fixture/idling_power.json",
        "unit": "microwatt",
    }
    summary = build_report({m: (lambda r=r: r) for m, r in reports.items()}, idle)["_summary"]
    assert summary["models_found"] == 5
    assert (summary["models_ingested"], summary["models_skipped"]) == (3, 2)
    assert summary["malformed_power_lines"] == 1
    assert summary["models_without_power_windows"] == ["old"]


def test_missing_metadata_names_both_accepted_files():
    files = {**_nvml_files("m"), **_nvml_files("ok")}
    del files["m/m_benchmark.json"]
    *_, reports = _ingest(files)
    assert reports["m"]["reason"] == (
        "data/01_raw/fixture/m: missing m_tensorrt.json or m_benchmark.json"
    )


def test_zero_usable_models_fails_with_one_clear_message():
    with pytest.raises(ValueError) as error:
        ingest_models({}, "empty_set", PARAMS)
    assert str(error.value).startswith(
        "No usable model run in data/01_raw/empty_set (0 model folder(s) found)"
    )


def test_zero_usable_models_among_several_fails_too():
    files = _nvml_files("a")
    del files["a/a_benchmark.json"]
    with pytest.raises(ValueError, match=r"No usable model run in data/01_raw/f \(1 model"):
        ingest_models(_loaders(files), "f", PARAMS)


def test_each_raw_file_is_parsed_once_lazily_and_its_findings_logged_once(caplog):
    files = {**_jetson_files("jet"), **_nvml_files("nv")}
    files["jet/jet_power_log.log"] = f"{TS2},5000.0,1200.0\n{TS1},5000.0,1000.0\n\n".encode()
    broken = _nvml_files("broken")
    broken["broken/trt_profiling/trt_layer_latency.json"] = b"[1, 2]"
    files.update(broken)
    reads: list[str] = []

    def counting(path: str, content: bytes):
        def load() -> bytes:
            reads.append(path)
            return content

        return load

    raw = {path: counting(path, content) for path, content in files.items()}
    tables = ingest_models(raw, "fixture", PARAMS)
    big = ("_power_log.log", "trt_layer_latency.json")
    assert not [path for path in reads if path.endswith(big)]  # nothing big parsed yet
    for table in tables:
        assert sorted(table) == ["broken", "jet", "nv"]
        assert all(callable(load) for load in table.values())

    reads.clear()
    windows, power, descriptions, metadata, reports = (
        {model: load() for model, load in table.items()} for table in tables
    )
    # every big file read exactly once, over all five outputs; the broken model's power log
    # is not even read once its latency file turned out unusable
    assert sorted(reads) == sorted(
        [
            "jet/jet_power_log.log",
            "jet/trt_profiling/trt_layer_latency.json",
            "nv/nv_power_log.log",
            "nv/trt_profiling/trt_layer_latency.json",
            "broken/trt_profiling/trt_layer_latency.json",
        ]
    )
    assert power["jet"]["timestamp"].is_monotonic_increasing  # out-of-order log sorted
    assert power["jet"]["power_uw"].tolist() == [5_000_000.0, 6_000_000.0]
    assert metadata["nv"]["dialect"] == "nvml" and metadata["jet"]["has_power_windows"]
    # an unusable latency file: empty tables, a report saying why
    assert windows["broken"].empty and power["broken"].empty and descriptions["broken"].empty
    assert reports["broken"]["skipped"] and "expected an object" in reports["broken"]["reason"]
    assert caplog.text.count("jet_power_log.log: skipped 0 malformed line(s)") == 1  # once


def test_idle_power_must_be_there():
    with pytest.raises(ValueError, match="data/01_raw/x/idling_power.json is missing"):
        read_idle_power({}, "x")


@pytest.mark.integration
def test_kedro_run_writes_all_partitions(kedro_project):
    project = kedro_project(("lenet", "resnet18"))
    run_kedro(project, "ingestion")
    out = project / "data" / "02_intermediate"
    for table in ("power_samples", "layer_windows", "layer_descriptions"):
        assert sorted(p.name for p in (out / table).iterdir()) == [
            "lenet.parquet",
            "resnet18.parquet",
        ]
    windows = pd.read_parquet(out / "layer_windows" / "lenet.parquet")
    assert windows["layer_name"].dtype != "category" and len(windows) == 1083
    assert json.loads((out / "run_metadata" / "lenet.json").read_text())["dialect"] == "nvml"
    report = json.loads((project / "data/08_reporting/data_quality.json").read_text())
    assert report["ingestion"]["_summary"]["models_ingested"] == 2
    assert report["ingestion"]["lenet"]["power_log"]["malformed"] == 0
    assert Path(out / "idle_power.json").exists()


RANGES = {
    **PARAMS,
    "plausible": {
        "jetson": {"power_uw": [0, 1e8], "latency_ms": [0, 1000], "window_ms": [0, 1000]},
        "nvml": {"power_uw": [0, 1e9], "latency_ms": [0, 1000], "window_ms": [0, 5000]},
    },
}


def test_implausible_values_are_dropped_per_dialect_counted_and_named(caplog):
    files = {**_jetson_files("jet"), **_nvml_files("nv")}
    files["jet/jet_power_log.log"] = (
        f"{TS1},5000.0,1000.0\n{TS1},5000.0,1000.0\n{TS2},5000.0,-56600.0\n"
        "20241121-05:20:04.300000,5000.0,1200.0\n".encode()
    )
    # 250 W is plausible for nvml, not for jetson (1e8 µW here); a 1e12 ms latency is for none
    files["nv/nv_power_log.log"] = f"{TS1},250000\n{TS2},251000\n".encode()
    files["nv/trt_profiling/trt_layer_latency.json"] = json.dumps(
        {"conv1": [[0.01, TS1, 100], [1e12, TS2, 100]]}
    ).encode()
    power, windows, _, _, reports = _ingest_with(files, RANGES)

    jet = reports["jet"]["power_log"]
    assert (jet["valid"], jet["out_of_range"], jet["duplicate_timestamps"]) == (2, 1, 1)
    assert jet["first_out_of_range_lines"] == [3] and jet["first_duplicate_timestamp_lines"] == [2]
    assert jet["first_out_of_range_values_uw"] == [-283_000_000.0]
    assert power["jet"]["power_uw"].tolist() == [5e6, 6e6]
    assert reports["nv"]["power_log"]["out_of_range"] == 0
    nv = reports["nv"]["latency"]
    assert (nv["windows"], nv["out_of_range_entries"]) == (1, 1)
    assert nv["first_out_of_range_entries"] == ["conv1 cycle 2"]
    assert windows["nv"]["cycle"].tolist() == [1]
    assert "jet_power_log.log: dropped 1 reading(s) outside the plausible range" in caplog.text

    summary = build_report({m: (lambda r=r: r) for m, r in reports.items()}, IDLE)["_summary"]
    assert summary["power_readings_out_of_range"] == 1
    assert summary["power_readings_repeating_a_timestamp"] == 1
    assert summary["latency_entries_out_of_range"] == 1
    assert summary["latency_entries_repeating_an_end"] == 0


def test_a_power_log_without_a_usable_reading_skips_its_model(caplog):
    files = {**_jetson_files("jet"), **_nvml_files("empty"), **_nvml_files("negative")}
    files["empty/empty_power_log.log"] = b""
    files["negative/negative_power_log.log"] = f"{TS1},-250000\n\n{TS2},oops\n".encode()
    power, windows, descriptions, metadata, reports = _ingest_with(files, RANGES)

    assert reports["empty"] == {
        "skipped": True,
        "reason": "data/01_raw/fixture/empty/empty_power_log.log: no usable power sample "
        "(0 line(s))",
        "power_log": reports["empty"]["power_log"],
    }
    assert reports["negative"]["reason"] == (
        "data/01_raw/fixture/negative/negative_power_log.log: no usable power sample "
        "(3 line(s): 1 blank, 1 malformed, 1 outside the plausible range)"
    )
    assert reports["negative"]["power_log"]["first_out_of_range_lines"] == [1]
    for model in ("empty", "negative"):  # nothing of it is written as ingested
        assert windows[model].empty and power[model].empty and descriptions[model].empty
    assert "Skipping model empty: data/01_raw/fixture/empty/empty_power_log.log" in caplog.text
    summary = build_report({m: (lambda r=r: r) for m, r in reports.items()}, IDLE)["_summary"]
    assert (summary["models_ingested"], summary["models_skipped"]) == (1, 2)
    assert sorted(summary["skipped"]) == ["empty", "negative"]


def test_a_latency_file_without_a_usable_entry_skips_its_model():
    files = {**_jetson_files("jet"), **_nvml_files("slow")}
    files["slow/trt_profiling/trt_layer_latency.json"] = json.dumps(
        {"conv1": [[1e12, TS1, 100], [-1, TS2, 100]]}
    ).encode()
    *_, reports = _ingest_with(files, RANGES)
    assert reports["slow"]["reason"] == (
        "data/01_raw/fixture/slow/trt_profiling/trt_layer_latency.json: no usable latency entry "
        "(2 entr(y/ies): 1 invalid, 1 outside the plausible range)"
    )
    assert reports["slow"]["latency"]["first_out_of_range_entries"] == ["conv1 cycle 1"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"avg_idle_power": 120.95},
            "data/01_raw/x/idling_power.json: avg_idle_power 120.95 µW (0.00012095 W) is "
            "outside the plausible idle power 100000 .. 3e+09 µW "
            "(ingestion.plausible_idle_power_uw); was it given in another unit? "
            "120.95 W = 120950000 µW or 120.95 mW = 120950 µW: write it in microwatts",
        ),
        (
            {"avg_idle_power": 4200.0},
            "data/01_raw/x/idling_power.json: avg_idle_power 4200 µW (0.0042 W) is outside the "
            "plausible idle power 100000 .. 3e+09 µW (ingestion.plausible_idle_power_uw); was "
            "it given in another unit? 4200 mW = 4200000 µW: write it in microwatts",
        ),
        (
            {"avg_idle_power": 5e13},
            "data/01_raw/x/idling_power.json: avg_idle_power 5e+13 µW (5e+07 W) is outside the "
            "plausible idle power 100000 .. 3e+09 µW (ingestion.plausible_idle_power_uw)",
        ),
        (
            {"avg_idle_power": 120.95, "unit": "watt"},
            "data/01_raw/x/idling_power.json: 'unit' is 'watt', but 'avg_idle_power' must be "
            'in microwatts (write it in µW and set "unit": "microwatt")',
        ),
    ],
)
def test_idle_power_in_another_unit_fails_with_a_hint(record, message):
    files = _loaders({"idling_power.json": json.dumps(record).encode()})
    with pytest.raises(ValueError) as error:
        read_idle_power(files, "x", PARAMS)
    assert str(error.value) == message


def test_idle_power_range_is_configurable_and_checked():
    files = _loaders({"idling_power.json": b'{"avg_idle_power": 120.95}'})
    params = {"plausible_idle_power_uw": [1, 1000]}
    assert read_idle_power(files, "x", params)["avg_idle_power_uw"] == 120.95
    with pytest.raises(ValueError, match=r"ingestion.plausible_idle_power_uw: expected \[min,"):
        read_idle_power(files, "x", {"plausible_idle_power_uw": [5, 1]})
    bad = {"plausible": {"nvml": {"power_uw": "lots"}}}
    with pytest.raises(ValueError, match=r"ingestion.plausible.nvml.power_uw: expected"):
        ingest_models(_loaders(_nvml_files("nv")), "x", bad)


IDLE = {"avg_idle_power_uw": 4e6, "source": "test"}


def _ingest_with(files: dict[str, bytes], params: dict) -> tuple[dict, dict, dict, dict, dict]:
    """``_ingest`` with other parameters: (power, windows, descriptions, metadata, reports)."""
    tables = ingest_models(_loaders(files), "fixture", params)
    windows, power, descriptions, metadata, reports = (
        {m: load() for m, load in table.items()} for table in tables
    )
    return power, windows, descriptions, metadata, reports


@pytest.mark.integration
def test_kedro_run_with_idle_power_in_watts_fails_in_one_line_and_keeps_nothing(tmp_path):
    project = make_project(tmp_path, models=("lenet",))
    idle = project / "data/01_raw/h200_isolated_v1/idling_power.json"
    idle.write_text(json.dumps({**json.loads(idle.read_text()), "avg_idle_power": 120.95}))
    done = subprocess.run(
        [KEDRO, "run", "--pipelines", "ingestion"],
        cwd=project,
        env={**_environment(project)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        "Error: data/01_raw/h200_isolated_v1/idling_power.json: avg_idle_power 120.95 µW "
        "(0.00012095 W) is outside the plausible idle power 100000 .. 3e+09 µW "
        "(ingestion.plausible_idle_power_uw); was it given in another unit? 120.95 W = "
        "120950000 µW or 120.95 mW = 120950 µW: write it in microwatts"
    ]
    assert not (project / "data/02_intermediate/idle_power.json").exists()


@pytest.mark.integration
def test_kedro_run_drops_implausible_and_repeated_readings_and_maps_as_if_clean(kedro_project):
    project = kedro_project(("lenet",))
    log = project / "data/01_raw/h200_isolated_v1/lenet/lenet_power_log.log"
    clean = log.read_bytes()
    first = clean.split(b"\n")[0].split(b",")[0]
    # appended, out of time order: a negative reading and a 1e15 µW one half an hour before
    # the log (outside every window), and the first line's timestamp again
    log.write_bytes(
        clean
        + b"20261127-12:00:00.000000,-283000\n"
        + b"20261127-12:00:00.000001,1000000000000\n"
        + first
        + b",999999\n"
    )
    run_kedro(project, "ingestion")
    run_kedro(project, "power_mapping")

    quality = json.loads((project / "data/08_reporting/data_quality.json").read_text())
    report = quality["ingestion"]["lenet"]["power_log"]
    assert (report["lines_total"], report["valid"]) == (6701, 6698)
    assert (report["out_of_range"], report["first_out_of_range_lines"]) == (2, [6699, 6700])
    assert report["first_out_of_range_values_uw"] == [-283e6, 1e15]
    assert (report["duplicate_timestamps"], report["first_duplicate_timestamp_lines"]) == (
        1,
        [6701],
    )
    summary = quality["ingestion"]["_summary"]
    assert summary["power_readings_out_of_range"] == 2
    assert summary["power_readings_repeating_a_timestamp"] == 1

    # the layer-wise table equals the mapping of the untouched files, to the last bit
    nvml = DEFAULT_RANGES["nvml"]
    samples, _ = parse_power_log(clean, "clean", 5, nvml.power_uw)
    latency = BUNDLED_RAW / "lenet/trt_profiling/trt_layer_latency.json"
    windows, _ = parse_layer_latency(latency.read_bytes(), "clean", 5, nvml)
    descriptions = pd.read_parquet(
        project / "data/02_intermediate/layer_descriptions/lenet.parquet"
    )
    idle = json.loads((BUNDLED_RAW / "idling_power.json").read_text())["avg_idle_power"]
    expected, _ = map_power_to_windows(
        samples, windows.assign(layer_name=windows["layer_name"].astype(str)), descriptions, idle
    )
    mapped = pd.read_parquet(project / "data/03_primary/layerwise/lenet.parquet")
    power = "layer_power_including_idle_power_micro_watt"
    np.testing.assert_array_equal(mapped[power].to_numpy(), expected[power].to_numpy())


def _environment(project: Path) -> dict[str, str]:
    import os  # noqa: PLC0415

    return {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    }
