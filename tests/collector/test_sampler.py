"""The power sampler: a real child process with an injected clock and source (exact schedule,
no catch-up bursts, failures), then on the wall clock (rate, shutdown, orphan handling)."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_collector.ina3221 import Ina3221Source, choose_rails, find_rails
from edge_collector.rawdata import parse_timestamp
from edge_collector.sampler import PowerSampler, SamplerError, read_log
from tests.collector import fakes

START = 1_764_590_400.0  # 2025-12-01 12:00:00 UTC, a whole second


def _times(path: Path) -> list[float]:
    return [parse_timestamp(stamp) for stamp, _ in read_log(path)]


def test_injected_clock_gives_the_exact_schedule(tmp_path: Path) -> None:
    log = tmp_path / "power.log"
    sampler = PowerSampler(
        fakes.CountingSource(), log, 0.004, clock=fakes.StepClock(START), max_samples=250
    )
    with sampler:
        deadline = time.monotonic() + 20
        while sampler.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
    report = sampler.report
    assert report.status == "ok"
    assert report.samples == 250
    assert (report.failures, report.overruns) == (0, 0)
    lines = read_log(log)
    assert [fields for _, fields in lines[:3]] == [
        ("5000.0", "1000.0"),
        ("5000.0", "1001.0"),
        ("5000.0", "1002.0"),
    ]
    offsets = [t - START for t in _times(log)]
    assert offsets == pytest.approx([k * 0.004 for k in range(250)], abs=1.5e-6)  # µs stamps
    assert report.mean_uw == pytest.approx(5000 * (1000 + 124.5))
    assert report.achieved_hz == pytest.approx(250.0, rel=1e-4)


def test_a_slow_sensor_skips_slots_instead_of_bursting(tmp_path: Path) -> None:
    """Each reading takes 2.5 periods: the sampler falls behind, counts it, and keeps to the
    grid of due times without firing the missed readings back to back."""
    log = tmp_path / "power.log"
    clock = fakes.StepClock(START, tick=0.005)  # two clock reads per reading: 10 ms each
    with PowerSampler(fakes.CountingSource(), log, 0.004, clock=clock, max_samples=40) as sampler:
        while sampler.is_alive():
            time.sleep(0.02)
    assert sampler.report.samples == 40
    assert sampler.report.overruns == 40  # every reading came late
    gaps = [b - a for a, b in zip(_times(log), _times(log)[1:], strict=False)]
    assert min(gaps) >= 0.004 - 2e-6  # never two readings within one period


def test_failed_readings_are_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "power.log"
    source = fakes.CountingSource(fail_at=(3, 4, 10))
    with PowerSampler(source, log, 0.001, clock=fakes.StepClock(START), max_samples=20) as sampler:
        while sampler.is_alive():
            time.sleep(0.02)
    report = sampler.report
    assert (report.status, report.samples, report.failures) == ("ok", 20, 3)
    assert report.first_error == "reading 3: simulated failure"
    currents = [float(fields[1]) for _, fields in read_log(log)]
    assert 1003.0 not in currents and 1004.0 not in currents and 1010.0 not in currents
    offsets = [round((t - START) * 1000) for t in _times(log)]
    assert offsets[:5] == [0, 1, 2, 5, 6]  # the failed slots stay empty


def test_a_lost_sensor_stops_the_sampler(tmp_path: Path) -> None:
    log = tmp_path / "power.log"
    source = fakes.CountingSource(fail_from=5)
    sampler = PowerSampler(source, log, 0.001, clock=fakes.StepClock(START), max_failure_s=0.05)
    with sampler:
        while sampler.is_alive():
            time.sleep(0.02)
    report = sampler.report
    assert report.status == "sensor lost"
    assert (report.samples, report.failures) == (5, 50)  # 0.05 s of failures at 1 kHz
    assert report.first_error == "reading 54: simulated failure"


def test_a_source_that_cannot_open_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(SamplerError, match=r"did not start \(broken\).*in1_input: cannot be read"):
        PowerSampler(fakes.BrokenSource(), tmp_path / "p.log", 0.001).start()


def test_wall_clock_rate_and_clean_stop(tmp_path: Path) -> None:
    log = tmp_path / "power.log"
    sampler = PowerSampler(fakes.CountingSource(), log, 0.002)
    sampler.start()
    time.sleep(0.5)
    stopped = time.monotonic()
    report = sampler.stop()
    assert time.monotonic() - stopped < 2.0
    assert not sampler.is_alive()
    assert report.status == "ok"
    times = _times(log)
    assert len(times) == report.samples
    assert 100 <= report.samples <= 260  # 250 due in 0.5 s; a loaded CI machine loses some
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert statistics.median(gaps) == pytest.approx(0.002, rel=0.25)
    assert log.read_text().endswith("\n")  # the last line is complete
    assert abs(times[-1] - time.time()) < 5  # wall-clock (local time) stamps


def test_sigterm_stops_the_child_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "power.log"
    sampler = PowerSampler(fakes.CountingSource(), log, 0.002)
    sampler.start()
    time.sleep(0.1)
    os.kill(sampler.pid, signal.SIGTERM)
    report = sampler.stop()
    assert report.status == "ok"  # finished its line, flushed, reported
    assert report.samples == len(read_log(log)) > 10


def test_rail_vanishing_mid_run_with_a_real_sampler(tmp_path: Path) -> None:
    folder = fakes.orin_nano_jp5(tmp_path)
    source = Ina3221Source(choose_rails(find_rails(str(tmp_path))))
    log = tmp_path / "power.log"
    with PowerSampler(source, log, 0.002) as sampler:
        time.sleep(0.15)
        shutil.move(str(folder), tmp_path / "away")
        time.sleep(0.15)
        shutil.move(str(tmp_path / "away"), folder)
        time.sleep(0.15)
    report = sampler.report
    assert report.status == "ok"  # 0.15 s < the 1 s a sensor may stay lost
    assert report.failures > 10
    assert "in1_input: cannot be read" in report.first_error
    times = _times(log)
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) > 0.1  # the gap is in the log
    assert times[-1] - times[0] > 0.35  # sampling resumed after the rail came back


CHILD_OF_KILLED_PARENT = """
import sys, time
sys.path[:0] = {paths!r}
from edge_collector.sampler import PowerSampler
from tests.collector.fakes import CountingSource
sampler = PowerSampler(CountingSource(), {log!r}, 0.002, flush_s=0.05).start()
print(sampler.pid, flush=True)
time.sleep(60)
"""


def test_the_sampler_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    log = tmp_path / "power.log"
    code = CHILD_OF_KILLED_PARENT.format(paths=sys.path, log=str(log))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.2)
        parent.kill()  # SIGKILL: no cleanup in the parent at all
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the sampler outlived its parent"
    finally:
        parent.kill()
    lines = read_log(log)
    assert len(lines) > 20  # flushed before exiting


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
