"""One measurement, whatever the backend: idle power, then model runs, each with its sampler."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from edge_collector import __version__
from edge_collector.backends import Backend
from edge_collector.rawdata import Dataset, DatasetError
from edge_collector.sampler import PowerSampler, SamplerReport

logger = logging.getLogger("edge_collector")
#: sampler start-up (a spawned interpreter) counted in plans
SAMPLER_START_S = 0.5


class MeasurementError(Exception):
    """A measurement that must not be written (no power samples, a lost sensor)."""


def device_record(backend: Backend) -> dict[str, Any]:
    record = dict(backend.device_info())
    record.setdefault("kind", backend.kind)
    record.setdefault("precision", backend.precision)
    record.setdefault("collector", f"edge_collector {__version__}")
    return record


def prepare_dataset(backend: Backend, dataset: Dataset) -> dict[str, Any]:
    """Check the dataset can take this device (device.json), write device.json, clean up
    what a killed run left in staging."""
    device = device_record(backend)
    dataset.check_device(device)
    dataset.root.mkdir(parents=True, exist_ok=True)
    dataset.write_device(device)
    removed = dataset.discard_staging()
    if removed:
        logger.warning("Discarded half-written model(s) of an interrupted run: %s", removed)
    return device


def measure_idle(backend: Backend, dataset: Dataset, seconds: float) -> float:
    """Sample the idle device for ``seconds`` → ``idling_power.json``; returns µW."""
    backend.prepare_idle()
    log = dataset.staging / "idle_power_log.log"
    sampler = PowerSampler(backend.power_source(), log, backend.period_s)
    started = time.time()
    with sampler:
        time.sleep(seconds)
    report = _checked(sampler.report, "idle power")
    dataset.write_idle(
        report.mean_uw,
        samples=report.samples,
        power_source=backend.power_source().label,
        device={**device_record(backend), **_state(backend)},
        started=started,
        seconds=seconds,
    )
    log.unlink()
    dataset.finish()
    logger.info("Idle power: %.3f W (%d samples)", report.mean_uw / 1e6, report.samples)
    return report.mean_uw


def measure_model(
    backend: Backend,
    dataset: Dataset,
    name: str,
    model: Any,
    *,
    overwrite: bool = False,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Measure ``model`` into ``dataset/name`` (staged, then moved into place whole)."""
    folder = dataset.new_model(name, overwrite=overwrite)
    sampler = PowerSampler(backend.power_source(), folder.power_log, backend.period_s)
    with sampler:
        run = backend.run(model)
    report = _checked(sampler.report, str(folder.power_log))
    metadata = dict(run.metadata)
    metadata["power_sampling"] = {
        key: value
        for key, value in report.as_dict().items()
        if key not in ("path", "first", "last")
    }
    metadata["power_sampling"]["source"] = backend.power_source().label
    if extra_metadata:
        metadata.update(extra_metadata)
    folder.write(
        backend.dialect,
        latency=run.latency,
        engine_info=run.engine_info,
        metadata=metadata,
        layer_energy=run.layer_energy,
    )
    final = folder.commit()
    dataset.finish()
    return final


def _state(backend: Backend) -> dict[str, Any]:
    state = getattr(backend, "device_state", None)
    return state() if state is not None else {}


def _checked(report: SamplerReport | None, what: str) -> SamplerReport:
    if report is None or not report.ok:
        status = report.status if report else "no report"
        error = report.first_error if report else None
        raise MeasurementError(f"{what}: power sampling failed ({status}: {error})")
    if report.samples == 0:
        raise MeasurementError(f"{what}: the power sampler wrote no sample")
    if report.failures:
        logger.warning(
            "%s: %d power reading(s) failed and were skipped (first: %s)",
            what,
            report.failures,
            report.first_error,
        )
    return report


__all__ = ["DatasetError", "MeasurementError", "measure_idle", "measure_model"]
