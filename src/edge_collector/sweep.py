"""Sweeps: sampled layer configurations, each measured as a one-layer network, resumable.

Each configuration becomes an ordinary model folder (``sweep_conv_0007/``) holding a one-layer
network, so the project's pipelines train on a sweep unchanged (every folder is one "CNN" to
the grouped cross-validation).

Resuming: ``sweep_manifest.json`` (in the dataset) holds the plan's parameters and every
completed configuration; it is rewritten atomically after each model folder is moved into place.
Re-running the same command re-plans the same configurations (see ``distributions``), skips
the completed ones, discards a half-written model folder in staging and measures the rest:
nothing measured twice, nothing completed lost. A model folder that made it into the dataset
when the manifest update did not (a kill between the two) is adopted, not measured again.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, TextIO

from edge_collector import __version__
from edge_collector.backends import Backend
from edge_collector.distributions import (
    DISTRIBUTIONS_VERSION,
    Limits,
    PlannedConfig,
    describe_distributions,
    plan,
)
from edge_collector.layers import describe, single_layer_network, to_dict
from edge_collector.measure import SAMPLER_START_S, measure_idle, measure_model, prepare_dataset
from edge_collector.progress import Progress, format_duration
from edge_collector.rawdata import Dataset, DatasetError, read_json, write_json_atomic

logger = logging.getLogger("edge_collector")
MANIFEST_FILE = "sweep_manifest.json"
#: the plan parameters a resumed sweep must share with the manifest
IDENTITY = ("backend", "dialect", "seed", "distributions_version", "limits", "prefix")


class Manifest:
    """``sweep_manifest.json``: the plan's identity, counts and completed configurations."""

    def __init__(self, dataset: Dataset, identity: dict[str, Any], counts: dict[str, int]):
        self.path = dataset.root / MANIFEST_FILE
        self.identity = identity
        self.counts = counts
        self.completed: dict[str, dict[str, Any]] = {}
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S")

    @classmethod
    def load_or_new(
        cls, dataset: Dataset, identity: dict[str, Any], counts: dict[str, int]
    ) -> Manifest:
        manifest = cls(dataset, identity, counts)
        if not manifest.path.is_file():
            return manifest
        stored = read_json(manifest.path)
        if not isinstance(stored, dict) or not isinstance(stored.get("completed"), dict):
            raise DatasetError(f"{manifest.path}: not a sweep manifest (no 'completed' object)")
        differs = [k for k in IDENTITY if stored.get(k) != identity.get(k)]
        if differs:
            detail = "; ".join(
                f"{k}: {stored.get(k)!r} there, {identity.get(k)!r} now" for k in differs
            )
            raise DatasetError(
                f"{manifest.path}: this sweep was planned differently ({detail}). Re-run it with "
                "the same options to continue, or choose a new --out folder"
            )
        manifest.completed = stored["completed"]
        manifest.created = stored.get("created", manifest.created)
        return manifest

    def check_plan(self, configs: list[PlannedConfig]) -> None:
        """Completed entries must be the planned configurations of the same name."""
        planned = {c.name: to_dict(c.layer) for c in configs}
        for name, entry in self.completed.items():
            if name in planned and entry.get("config") != planned[name]:
                raise DatasetError(
                    f"{self.path}: {name} was measured as {entry.get('config')}, the plan now "
                    f"says {planned[name]}; was the manifest edited?"
                )

    def complete(self, config: PlannedConfig, seconds: float | None) -> None:
        self.completed[config.name] = {
            "config": to_dict(config.layer),
            "seconds": None if seconds is None else round(seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def save(self) -> None:
        write_json_atomic(
            self.path,
            {
                "tool": f"edge_collector {__version__}",
                "created": self.created,
                **self.identity,
                "counts": self.counts,
                "completed": self.completed,
            },
        )

    def mean_seconds(self) -> float | None:
        seconds = [e["seconds"] for e in self.completed.values() if e.get("seconds")]
        return sum(seconds) / len(seconds) if seconds else None


def identity(backend: Backend, seed: int, limits: Limits, prefix: str) -> dict[str, Any]:
    return {
        "backend": backend.kind,
        "dialect": backend.dialect,
        "seed": seed,
        "distributions_version": DISTRIBUTIONS_VERSION,
        "limits": limits.as_dict(),
        "prefix": prefix,
    }


def estimate_s(backend: Backend, configs: list[PlannedConfig], manifest: Manifest) -> float:
    """Seconds to measure ``configs``: the mean of this sweep's completed configurations when
    there are any (measured on this device), else the backend's estimate per configuration."""
    measured = manifest.mean_seconds()
    if measured is not None:
        return measured * len(configs)
    return sum(
        backend.estimate_s(single_layer_network(c.name, c.layer)) + SAMPLER_START_S for c in configs
    )


def print_plan(
    backend: Backend,
    dataset: Dataset,
    *,
    configs: list[PlannedConfig],
    manifest: Manifest,
    limits: Limits,
    idle_s: float,
    out: TextIO,
    show: int = 10,
) -> None:
    remaining = [c for c in configs if c.name not in manifest.completed]
    total_s = estimate_s(backend, remaining, manifest) + (0 if dataset.has_idle() else idle_s)
    basis = "mean of the completed configurations" if manifest.mean_seconds() else "estimate"
    per_class: dict[str, list[int]] = {}
    for c in configs:
        done = c.name in manifest.completed
        per_class.setdefault(c.layer_class, [0, 0])[0 if done else 1] += 1
    out.write(
        f"Sweep plan for {dataset.root} ({backend.kind} backend, {backend.dialect} dialect)\n"
    )
    for layer_class, (done, todo) in per_class.items():
        out.write(
            f"  {layer_class:<6} {done + todo:5d} configurations, {done} done, {todo} to measure\n"
        )
    out.write(f"  expected duration: {format_duration(total_s)} ({basis})\n")
    if not dataset.has_idle():
        out.write(f"  idle power first: {idle_s:g} s\n")
    out.write("Distributions:\n")
    for line in describe_distributions(limits):
        out.write("  " + line + "\n")
    if remaining:
        out.write(f"Next {min(show, len(remaining))} of {len(remaining)}:\n")
        for c in remaining[:show]:
            out.write(f"  {c.name:<22} {describe(c.layer)}\n")


def run_sweep(
    backend: Backend,
    dataset: Dataset,
    *,
    counts: dict[str, int],
    seed: int,
    limits: Limits,
    idle_s: float,
    prefix: str = "sweep",
    remeasure_idle: bool = False,
    dry_run: bool = False,
    out: TextIO | None = None,
    progress_stream: TextIO | None = None,
) -> int:
    """Plan, then measure every configuration not measured yet; returns how many were
    measured in this call."""
    out = out if out is not None else sys.stdout
    configs = plan(counts, seed, limits, prefix)
    manifest = Manifest.load_or_new(dataset, identity(backend, seed, limits, prefix), counts)
    manifest.check_plan(configs)
    if dry_run:
        print_plan(
            backend,
            dataset,
            configs=configs,
            manifest=manifest,
            limits=limits,
            idle_s=idle_s,
            out=out,
        )
        return 0

    prepare_dataset(backend, dataset)
    adopted = _adopt_orphans(dataset, configs, manifest)
    if adopted:
        logger.warning(
            "Adopted model folder(s) completed before the manifest was updated: %s", adopted
        )
    manifest.counts = {**manifest.counts, **counts}
    manifest.save()
    if remeasure_idle or not dataset.has_idle():
        measure_idle(backend, dataset, idle_s)
    remaining = [c for c in configs if c.name not in manifest.completed]
    measured = 0
    progress = Progress(
        len(configs),
        done=len(configs) - len(remaining),
        estimate_s=(estimate_s(backend, remaining[:1], manifest) if remaining else None),
        stream=progress_stream,
    )
    with progress, _discarding_staging(dataset):
        for config in remaining:
            progress.start(config.name)
            started = time.monotonic()
            measure_model(
                backend,
                dataset,
                config.name,
                single_layer_network(config.name, config.layer),
                extra_metadata={
                    "sweep": {"seed": seed, "index": config.index, "config": to_dict(config.layer)}
                },
            )
            seconds = time.monotonic() - started
            manifest.complete(config, seconds)
            manifest.save()
            measured += 1
            progress.finish(seconds)
    return measured


@contextmanager
def _discarding_staging(dataset: Dataset) -> Iterator[None]:
    """On an interrupt, remove the half-written model folder at once (the next start would)."""
    try:
        yield
    except BaseException:
        dataset.discard_staging()
        raise


def _adopt_orphans(dataset: Dataset, configs: list[PlannedConfig], manifest: Manifest) -> list[str]:
    adopted = []
    present = set(dataset.models())
    for config in configs:
        if config.name in present and config.name not in manifest.completed:
            manifest.complete(config, None)
            adopted.append(config.name)
    return adopted
