"""Sweeps: seeded and stable plans, coverage of every declared distribution, limits, and a
real sweep process killed (SIGKILL) and interrupted (SIGTERM), then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_collector import distributions as d
from edge_collector.backends.cpu import CpuBackend
from edge_collector.layers import Conv, Dense, Pool, layer_bytes, to_dict
from edge_collector.sampler import child_pids

UNLIMITED = d.Limits(max_gflops=1e12, max_mb=1e12)


def _layers(layer_class: str, count: int, seed: int = 0, limits: d.Limits = UNLIMITED) -> list:
    return [c.layer for c in d.plan({layer_class: count}, seed, limits)]


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    counts = {"conv": 30, "pool": 10, "dense": 10}
    first = [(c.name, to_dict(c.layer)) for c in d.plan(counts, 7, d.Limits())]
    again = [(c.name, to_dict(c.layer)) for c in d.plan(counts, 7, d.Limits())]
    other = [(c.name, to_dict(c.layer)) for c in d.plan(counts, 8, d.Limits())]
    assert first == again
    assert [name for name, _ in first] == [name for name, _ in other]
    assert (
        sum(a != b for a, b in zip(first, other, strict=True)) >= 45
    )  # nearly every configuration differs


def test_extending_a_sweep_keeps_its_configurations() -> None:
    small = {c.name: c.layer for c in d.plan({"conv": 5, "dense": 2}, 3, d.Limits())}
    large = {c.name: c.layer for c in d.plan({"conv": 50, "dense": 9}, 3, d.Limits())}
    assert all(large[name] == layer for name, layer in small.items())


def test_plan_interleaves_classes() -> None:
    names = [c.name for c in d.plan({"conv": 6, "pool": 2, "dense": 2}, 0, d.Limits())]
    assert names[:4] == [
        "sweep_conv_0000",
        "sweep_conv_0001",
        "sweep_pool_0000",
        "sweep_dense_0000",
    ]
    assert sorted(names) == sorted(
        [f"sweep_conv_{i:04d}" for i in range(6)]
        + [f"sweep_pool_{i:04d}" for i in range(2)]
        + [f"sweep_dense_{i:04d}" for i in range(2)]
    )


def _assert_range(values: list[int], dist: d.LogUniform) -> None:
    """Within the declared bounds, reaching into both ends (log-uniform: 1500 draws put ~10 %
    in the bottom and top 15 % of the log range)."""
    assert min(values) >= dist.low and max(values) <= dist.high
    span = (dist.high / dist.low) ** 0.15
    assert min(values) <= dist.low * span, (min(values), dist.low)
    assert max(values) >= dist.high / span, (max(values), dist.high)


def _assert_size(values: list[int]) -> None:
    ladder = d.SIZE.values
    assert set(ladder) <= set(values)
    between = [v for v in values if v not in ladder]
    assert 0.2 < len(between) / len(values) < 0.4  # 30 % declared off the ladder
    _assert_range(between, d.SIZE.between)


def test_convolution_coverage() -> None:
    layers: list[Conv] = _layers("conv", 1500)
    assert {c.batch for c in layers} == set(d.BATCH.values)
    assert {c.kernel for c in layers} == set(d.CONV["kernel"].values)
    assert {c.stride for c in layers} == set(d.CONV["stride"].values)
    _assert_size([c.size for c in layers])
    depthwise = [c for c in layers if c.groups > 1 and c.groups == c.in_channels == c.out_channels]
    grouped = [c for c in layers if c.groups > 1 and c not in depthwise]
    standard = [c for c in layers if c.groups == 1]
    assert len(depthwise) + len(grouped) + len(standard) == len(layers)
    for part, share in ((standard, 0.7), (depthwise, 0.2), (grouped, 0.1)):
        assert abs(len(part) / len(layers) - share) < 0.05
    assert {c.groups for c in grouped} == set(d.CONV["groups"].values)
    assert any(c.in_channels == 3 for c in standard)  # RGB stems
    _assert_range([c.in_channels for c in standard if c.in_channels != 3], d.CHANNELS)
    _assert_range([c.out_channels for c in standard], d.CHANNELS)
    _assert_range([c.in_channels for c in depthwise], d.CHANNELS)
    same = [c for c in layers if c.kernel > 1 and c.padding == c.kernel // 2]
    valid = [c for c in layers if c.kernel > 1 and c.padding == 0]
    assert same and valid and len(same) + len(valid) == sum(c.kernel > 1 for c in layers)


def test_pooling_coverage() -> None:
    layers: list[Pool] = _layers("pool", 1500)
    assert {p.kind for p in layers} == set(d.POOL["kind"].values)
    windowed = [p for p in layers if p.kind != "global_avg"]
    assert {p.window for p in windowed} == set(d.POOL["window"].values)
    assert any(p.stride == p.window for p in windowed)
    assert {p.stride for p in windowed} >= {1, 2, 3}
    assert {p.padding for p in windowed} == {0, 1}  # 0, or half the window (2 or 3 → 1)
    assert all(
        (p.window, p.stride, p.out_size) == (p.size, p.size, 1)
        for p in layers
        if p.kind == "global_avg"
    )
    assert {p.batch for p in layers} == set(d.BATCH.values)
    _assert_size([p.size for p in layers])
    _assert_range([p.channels for p in layers], d.CHANNELS)


def test_dense_coverage() -> None:
    layers: list[Dense] = _layers("dense", 1500)
    assert {x.batch for x in layers} == set(d.BATCH.values)
    _assert_range([x.in_features for x in layers], d.DENSE["in_features"])
    _assert_range([x.out_features for x in layers], d.DENSE["out_features"])


@pytest.mark.parametrize("layer_class", ["conv", "pool", "dense"])
def test_limits_are_respected(layer_class: str) -> None:
    limits = CpuBackend.default_limits
    for layer in _layers(layer_class, 300, seed=1, limits=limits):
        assert layer.flops <= limits.max_gflops * 1e9
        assert layer_bytes(layer, limits.element_bytes) <= limits.max_mb * 2**20


# ---------------------------------------------------------------------------- resume
SWEEP = [
    "sweep", "cpu", "--conv", "4", "--pool", "2", "--dense", "2", "--seed", "5",
    "--idle-s", "0.2", "--settle-ms", "10", "--record-ms", "60", "--whole-ms", "20",
]  # fmt: skip


def _collector(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "edge_collector", *args, "--out", str(out)]


def _completed(manifest: Path) -> dict:
    try:
        return json.loads(manifest.read_text())["completed"]
    except (OSError, ValueError, KeyError):
        return {}


def _start_and_stop(out: Path, after: int, signum: int) -> tuple[subprocess.Popen, list[int]]:
    """Start the sweep, wait until ``after`` configurations are complete, send ``signum``."""
    process = subprocess.Popen(
        _collector(out, *SWEEP), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(_completed(out / "sweep_manifest.json")) < after:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)
    children = child_pids(process.pid)
    process.send_signal(signum)
    process.wait(30)
    return process, children


def test_a_killed_sweep_resumes_without_measuring_anything_twice(tmp_path: Path) -> None:
    out = tmp_path / "data" / "01_raw" / "cpu_sweep"
    process, children = _start_and_stop(out, after=2, signum=signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    done_before = _completed(out / "sweep_manifest.json")
    assert len(done_before) >= 2
    stamps = {
        name: os.stat(out / name / f"{name}_power_log.log").st_mtime_ns for name in done_before
    }
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children), "a sampler outlived the killed sweep"

    staging = out.parent / ".cpu_sweep.staging"
    half_written = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
    resumed = subprocess.run(
        _collector(out, *SWEEP), capture_output=True, text=True, timeout=120, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    if half_written:  # killed mid-measurement (the usual case): discarded, then measured
        assert f"Discarded half-written model(s) of an interrupted run: {half_written}" in (
            resumed.stderr
        )
    completed = _completed(out / "sweep_manifest.json")
    planned = [
        c.name for c in d.plan({"conv": 4, "pool": 2, "dense": 2}, 5, CpuBackend.default_limits)
    ]
    assert sorted(completed) == sorted(planned)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(planned)
    for name in done_before:  # measured once: the resumed run did not touch them
        assert completed[name] == done_before[name]
        assert os.stat(out / name / f"{name}_power_log.log").st_mtime_ns == stamps[name]
    assert f"{len(done_before)}/8" not in resumed.stderr  # progress starts after them
    assert "8/8 (100%)" in resumed.stderr and "ETA" in resumed.stderr
    assert not staging.exists()
    for name in planned:  # every folder complete
        files = {str(p.relative_to(out / name)) for p in (out / name).rglob("*") if p.is_file()}
        assert files == {
            f"{name}_power_log.log",
            f"{name}_benchmark.json",
            "layer_energy.json",
            "trt_profiling/trt_engine_info.json",
            "trt_profiling/trt_layer_latency.json",
        }


def test_sigterm_stops_a_sweep_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "cpu_sweep"
    process, _ = _start_and_stop(out, after=1, signum=signal.SIGTERM)
    _, stderr = process.communicate()
    assert process.returncode == 130
    assert "run the same command again to continue" in stderr
    assert not (tmp_path / ".cpu_sweep.staging").exists()  # nothing half-written left
    assert len(_completed(out / "sweep_manifest.json")) >= 1


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    done = subprocess.run(
        _collector(out, "sweep", "cpu", "--conv", "40", "--dense", "10", "--dry-run"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "conv      40 configurations, 0 done, 40 to measure" in done.stdout
    assert "dense     10 configurations, 0 done, 10 to measure" in done.stdout
    assert "expected duration:" in done.stdout and "idle power first: 8 s" in done.stdout
    assert "log-uniform 8..2048, multiples of 8" in done.stdout
    assert "sweep_conv_0000" in done.stdout
    assert not out.exists()


def test_a_different_plan_is_not_resumed(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "cpu", "--dense", "1", "--idle-s", "0.1", "--record-ms", "20"]
    first = subprocess.run(
        _collector(out, *args), capture_output=True, text=True, timeout=60, check=False
    )
    assert first.returncode == 0, first.stderr
    other = subprocess.run(
        _collector(out, *args, "--seed", "2"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode == 1
    assert "planned differently (seed: 0 there, 2 now)" in other.stderr


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
