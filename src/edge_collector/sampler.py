"""Board power sampled in a separate process at a set period, one timestamped line per reading.

Why a process: the measured workload (TensorRT, PyTorch, NumPy) holds the interpreter and the
CPU in bursts; a thread in the same interpreter would sample late exactly when the load is
high. The child only reads the sensor and appends lines, so its timing does not depend on
the workload's.

The child is started with the ``spawn`` method by default: the parent may hold a CUDA context,
which must not be forked. Everything handed to it (the power source, the clock) is pickled, and
sources open their device (sysfs files, NVML) in the child.

Timing: reading *k* is due at ``t0 + k * period`` on the injected clock. A reading that comes
late does not shift the schedule; when the sampler falls more than a period behind (a slow
sensor, a loaded CPU) it skips the missed slots instead of firing them in a burst, and counts
an overrun. Each line is stamped with the clock's time right after the reading (the wall
clock, local time, ``%Y%m%d-%H:%M:%S.%f``), the instant the value is known to hold.

Shutdown: ``stop()`` (or leaving the ``with`` block) sets an event; the child finishes the
current line, flushes, closes the source and sends its report. The child ignores SIGINT (a
Ctrl-C reaches the whole process group; the parent decides), stops cleanly on SIGTERM, and stops
by itself when its parent dies (a ``kill -9`` of the collector leaves no sampler behind). The
file is flushed every ``flush_s``, so a killed sampler loses at most that much.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence, Tuple, Union

from edge_collector.rawdata import format_timestamp

Fields = Tuple[Union[int, float], ...]


class SensorError(Exception):
    """One reading failed (a rail that vanished, an unreadable value); the message names the
    file or call and what was expected. The sampler skips the reading and counts it."""


class SamplerError(Exception):
    """The sampler could not start, or lost its sensor for good."""


class PowerSource:
    """What the sampler reads. Subclasses must be picklable before ``open`` (they are sent to
    the child process) and open their device in ``open``, which runs in the child."""

    #: what is read, as recorded in device.json (e.g. ``VDD_IN``)
    name = "unknown"
    #: who reads it; ``reader:name`` is idling_power.json's ``power_source``
    reader = "unknown"
    #: the raw-data dialect of the lines: ``jetson`` (mV,mA) or ``nvml`` (mW)
    dialect = "jetson"

    def open(self) -> None:
        """Acquire the device; raise ``SensorError`` naming what is missing."""

    def read(self) -> Fields:
        """One reading: ``(mV, mA)`` (Jetson) or ``(mW,)`` (NVML); ``SensorError`` if none."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device."""

    @property
    def label(self) -> str:
        return self.name if self.reader == self.name else f"{self.reader}:{self.name}"

    def microwatts(self, fields: Fields) -> float:
        if self.dialect == "jetson":
            return float(fields[0]) * float(fields[1])
        return float(fields[0]) * 1000.0

    def format(self, fields: Fields) -> str:
        """The line's fields after the timestamp: ``5000.0,1096.0`` or ``249580``."""
        if self.dialect == "jetson":
            return "{:.1f},{:.1f}".format(*fields)
        return str(int(round(fields[0])))


class SystemClock:
    """The wall clock (the raw format's timestamps are wall-clock time)."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class SamplerReport:
    """What the child reports when it stops."""

    status: str = "not started"  # ok | sensor lost | error | killed | died
    samples: int = 0
    failures: int = 0
    overruns: int = 0
    first_error: str | None = None
    mean_uw: float = float("nan")
    first: float | None = None  # clock time of the first and last line
    last: float | None = None
    period_s: float = 0.0
    path: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def achieved_hz(self) -> float:
        if self.samples < 2 or self.first is None or self.last is None or self.last <= self.first:
            return float("nan")
        return (self.samples - 1) / (self.last - self.first)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["achieved_hz"] = None if math.isnan(self.achieved_hz) else self.achieved_hz
        if math.isnan(self.mean_uw):
            out["mean_uw"] = None
        return out


class PowerSampler:
    """Sample ``source`` every ``period_s`` into ``path`` from a child process.

    ``clock`` (default the wall clock) and ``source`` are injectable for tests; so is
    ``max_samples`` (stop after that many lines). A sensor failing ``max_failure_s`` in a row
    (in readings: ``max_failure_s / period_s``) stops the sampler with status ``sensor lost``.
    """

    def __init__(
        self,
        source: PowerSource,
        path: str | Path,
        period_s: float,
        *,
        clock: Any | None = None,
        max_samples: int | None = None,
        max_failure_s: float = 1.0,
        flush_s: float = 0.25,
        context: str = "spawn",
        start_timeout_s: float = 60.0,
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be positive, got {period_s!r}")
        self.source = source
        self.path = Path(path)
        self.period_s = float(period_s)
        self.clock = clock if clock is not None else SystemClock()
        self.max_samples = max_samples
        self.max_failures = max(1, int(round(max_failure_s / self.period_s)))
        self.flush_s = flush_s
        self.start_timeout_s = start_timeout_s
        self._context = multiprocessing.get_context(context)
        self._process: Any | None = None
        self._stop: Any | None = None
        self._conn: Any | None = None
        self.report: SamplerReport | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> PowerSampler:
        """Start the child and wait until the source is open and sampling has begun."""
        if self._process is not None:
            raise SamplerError("this sampler was started already")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        parent_conn, child_conn = self._context.Pipe(duplex=False)
        self._stop = self._context.Event()
        self._conn = parent_conn
        self._process = self._context.Process(
            target=_run,
            name="edge_collector-sampler",
            kwargs={
                "source": self.source,
                "path": str(self.path),
                "period_s": self.period_s,
                "clock": self.clock,
                "stop": self._stop,
                "conn": child_conn,
                "max_samples": self.max_samples,
                "max_failures": self.max_failures,
                "flush_s": self.flush_s,
            },
            daemon=True,
        )
        self._process.start()
        child_conn.close()
        message = self._receive(self.start_timeout_s)
        if message is None or "error" in message:
            self._process.join(5)
            reason = message["error"] if message else f"exit code {self._process.exitcode}"
            raise SamplerError(f"the power sampler did not start ({self.source.name}): {reason}")
        return self

    def stop(self, timeout_s: float = 10.0) -> SamplerReport:
        """Stop the child and return its report (idempotent)."""
        if self._process is None:
            raise SamplerError("stop() before start()")
        if self._stop is not None:
            self._stop.set()
        if self.report is None:
            message = self._receive(timeout_s)
            if message and "report" in message:
                self.report = SamplerReport(**message["report"])
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
            self.report = self.report or SamplerReport(status="killed", path=str(self.path))
        if self.report is None:
            self.report = SamplerReport(
                status=f"died (exit code {self._process.exitcode})", path=str(self.path)
            )
        return self.report

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def __enter__(self) -> PowerSampler:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        if self._process is not None:
            self.stop()

    def _receive(self, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self._conn.poll(0.05):
                    return self._conn.recv()
            except (EOFError, OSError):
                return None
            if not self._process.is_alive() and not self._conn.poll(0):
                return None
        return None


def _run(
    *,
    source: PowerSource,
    path: str,
    period_s: float,
    clock: Any,
    stop: Any,
    conn: Any,
    max_samples: int | None,
    max_failures: int,
    flush_s: float,
) -> None:
    """The child process: open the source, sample until told to stop, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    report = SamplerReport(status="ok", period_s=period_s, path=path)
    try:
        source.open()
    except Exception as exc:  # any failure to open is the start error the parent reports
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    parent = multiprocessing.parent_process()
    total_uw = 0.0
    try:
        with open(path, "w", encoding="utf-8", buffering=1 << 16) as out:
            conn.send({"ready": True})
            t0 = clock.time()
            slot, consecutive = 0, 0
            next_housekeeping = time.monotonic() + flush_s
            while not stop.is_set() and not terminated:
                if max_samples is not None and report.samples >= max_samples:
                    break
                try:
                    fields = source.read()
                except SensorError as exc:
                    report.failures += 1
                    consecutive += 1
                    report.first_error = report.first_error or str(exc)
                    if consecutive >= max_failures:
                        report.status = "sensor lost"
                        report.first_error = str(exc)
                        break
                else:
                    stamp = clock.time()
                    out.write(format_timestamp(stamp) + "," + source.format(fields) + "\n")
                    total_uw += source.microwatts(fields)
                    report.samples += 1
                    report.first = stamp if report.first is None else report.first
                    report.last = stamp
                    consecutive = 0
                slot += 1
                now = clock.time()
                due = t0 + slot * period_s
                if now - due > period_s:  # fell behind: skip the missed slots, no burst
                    report.overruns += 1
                    slot = int(math.floor((now - t0) / period_s)) + 1
                    due = t0 + slot * period_s
                if due > now:
                    clock.sleep(due - now)
                if time.monotonic() >= next_housekeeping:
                    out.flush()
                    if parent is not None and not parent.is_alive():
                        report.status = "parent died"
                        break
                    next_housekeeping = time.monotonic() + flush_s
    except Exception as exc:
        report.status = "error"
        report.first_error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            source.close()
        except Exception as exc:
            report.first_error = report.first_error or f"closing the source: {exc}"
    if report.samples:
        report.mean_uw = total_uw / report.samples
    with suppress(OSError, ValueError):  # the parent is gone: the file is what matters
        conn.send({"report": asdict(report)})


def read_log(path: str | Path) -> Sequence[tuple[str, tuple[str, ...]]]:
    """``[(timestamp, (field, ...)), ...]`` of a power log (tests and summaries)."""
    out = []
    with open(str(path), encoding="utf-8") as lines:
        for line in lines:
            parts = line.rstrip("\n").split(",")
            if len(parts) >= 2:
                out.append((parts[0], tuple(parts[1:])))
    return out


def child_pids(pid: int) -> Sequence[int]:
    """Child process ids of ``pid`` (Linux ``/proc``; empty elsewhere), for diagnostics."""
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                children.extend(int(p) for p in handle.read().split())
    except OSError:
        return []
    return children
