"""The table that ends a training run: what was chosen, how well it predicts, what data was
left out, and where the models are.

``summary_table`` builds it from the report sections (pure); ``RunSummaryHook`` reads those
sections through the catalog when a run that trained models ends, logs the table and sets it
as the MLflow run's description.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

from power_modelling.core.layers import LAYER_CLASSES, REPORTED_TARGETS

logger = logging.getLogger(__name__)

#: Catalog names of the sections the table is built from.
NETWORK_METRICS = "network_metrics"
LOCO_METRICS = "loco_metrics"
QUALITY_STAGES = ("ingestion", "power_mapping", "feature_engineering")
#: The fitted model whose folder is reported as "where the models are".
MODEL_DATASET = f"{LAYER_CLASSES[0]}.power_model"
#: MLflow shows this tag as the run's description (Markdown).
DESCRIPTION_TAG = "mlflow.note.content"

Section = Mapping[str, Any]


def summary_table(
    layer_metrics: Mapping[str, Section],
    network: Section | None = None,
    quality: Mapping[str, Section] | None = None,
    models_dir: str | None = None,
    loco: Section | None = None,
) -> str:
    """The run's results as plain, aligned text.

    ``layer_metrics``: ``{layer_class: metrics.json section}`` (``{target: {estimator,
    cv_rmspe, rmspe, within_10pct, ...}}``); ``network``: the ``network`` section;
    ``quality``: ``{stage: data_quality.json section}``; ``models_dir``: where the fitted
    models were written; ``loco``: the leave-one-CNN-out section. Missing parts are left out.
    """
    header = ("layer class", "target", "estimator", "CV RMSPE", "test RMSPE", "test within 10 %")
    rows = [
        (
            layer_class,
            target,
            str(figures.get("estimator", "?")),
            _percent(figures.get("cv_rmspe")),
            _percent(figures.get("rmspe")),
            _percent(figures.get("within_10pct"), scale=100, digits=0),
        )
        for layer_class, section in layer_metrics.items()
        for target in _targets(section)
        for figures in [section[target]]
    ]
    lines = ["Training results (RMSPE: grouped CV over the training CNNs, test: held-out CNNs)"]
    lines += _aligned([header, *rows], right=(3, 4, 5))
    if network:
        lines += _network_lines(network)
    if loco:
        lines += _loco_lines(loco)
    lines += _quality_lines(quality or {})
    if models_dir:
        lines.append(f"Models written to {models_dir}")
    return "\n".join(lines)


def _targets(section: Section) -> list[str]:
    """The reported targets first, in their usual order, then any other."""
    known = [t for t in REPORTED_TARGETS if isinstance(section.get(t), Mapping)]
    others = [t for t, v in section.items() if isinstance(v, Mapping) and t not in known]
    return known + others


def _percent(value: Any, scale: float = 1.0, digits: int = 1) -> str:
    """``12.3 %``; ``-`` for a missing or non-numeric value (the JSON has ``null`` for NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value * scale:.{digits}f} %"


def _aligned(rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    """Rows as lines of columns padded to a common width, header rule under the first row."""
    right = set(right)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [line(rows[0]), rule, *(line(row) for row in rows[1:])]


def _network_lines(network: Section) -> list[str]:
    """Mean accuracy over the held-out CNNs (``network.mean``), naming them."""
    mean = network.get("mean") or {}
    figures = _accuracies(
        mean,
        (
            ("runtime_accuracy", "runtime"),
            ("energy_accuracy", "energy"),
            ("energy_total_accuracy", "energy with idle"),
            ("avg_power_accuracy", "average power"),
        ),
    )
    names = ", ".join(sorted(network.get("networks") or {})) or "the test CNNs"
    return [f"Network-level accuracy, mean over {names}:", f"  {figures or '-'}"]


def _accuracies(values: Section, labels: tuple[tuple[str, str], ...]) -> str:
    """``runtime 96.9 %  energy 96.8 %``: the accuracies (fractions) among ``values``."""
    return "  ".join(
        f"{label} {_percent(values.get(key), scale=100)}" for key, label in labels if key in values
    )


def _loco_lines(loco: Section) -> list[str]:
    """Means over the CNNs of the leave-one-CNN-out section, overall and per layer class."""
    if not loco.get("enabled", True):
        return [f"Leave-one-CNN-out: {loco.get('note', 'disabled')}"]
    summary = loco.get("summary") or {}
    mean = summary.get("mean_over_cnns") or {}
    per_class = ", ".join(
        f"{layer_class} {_percent(figures.get('runtime_rmspe')).removesuffix(' %')} / "
        f"{_percent(figures.get('power_total_rmspe'))}"
        for layer_class, figures in (summary.get("mean_over_cnns_per_class") or {}).items()
    )
    network = _accuracies(
        mean,
        (
            ("network_runtime_accuracy", "runtime"),
            ("network_energy_accuracy", "energy"),
            ("network_energy_total_accuracy", "energy with idle"),
        ),
    )
    return [
        f"Leave-one-CNN-out, mean over {summary.get('n_cnns', '?')} CNNs (each predicted by "
        "models fitted on the others):",
        f"  per-layer RMSPE runtime {_percent(mean.get('runtime_rmspe'))}  total power "
        f"{_percent(mean.get('power_total_rmspe'))}",
        f"  per class (runtime / total power): {per_class or '-'}",
        f"  network accuracy {network or '-'}",
    ]


def _per_model_total(section: Section, key: str) -> int:
    """Sum of ``key`` over a section's per-model entries (``_``-keys are summaries)."""
    return sum(
        int(entry.get(key) or 0)
        for model, entry in section.items()
        if not str(model).startswith("_") and isinstance(entry, Mapping)
    )


def _quality_lines(quality: Mapping[str, Section]) -> list[str]:
    """What was dropped or left out on the way from the raw folder to the training tables,
    and the training tables' sizes."""
    left_out = []
    ingestion = (quality.get("ingestion") or {}).get("_summary")
    if ingestion:
        skipped = sorted(ingestion.get("skipped") or {})
        left_out.append(
            f"models skipped {ingestion.get('models_skipped', len(skipped))} of "
            f"{ingestion.get('models_found', 0)}"
            + (f" ({', '.join(skipped)})" if skipped else "")
            + f"; malformed power-log lines {ingestion.get('malformed_power_lines', 0):,}"
        )
    mapping = quality.get("power_mapping")
    if mapping:
        left_out.append(
            f"layer windows without power samples "
            f"{_per_model_total(mapping, 'windows_without_samples'):,} of "
            f"{_per_model_total(mapping, 'windows_total'):,}; invalid power samples "
            f"{_per_model_total(mapping, 'samples_invalid_dropped'):,}"
        )
    features = quality.get("feature_engineering")
    tables = (features or {}).get("_tables") or {}
    if features:
        excluded = sum(int(t.get("power_excluded", 0)) for t in tables.values())
        left_out.append(
            f"layers without power target {excluded}; measured but not described "
            f"{_per_model_total(features, 'measured_not_described')}; other types (not "
            f"modelled) {_per_model_total(features, 'other')}"
        )
    lines = ["Left out:", *(f"  {line}" for line in left_out)] if left_out else []
    if tables:
        rows = ", ".join(f"{t.get('rows', 0):,} {name}" for name, t in tables.items())
        lines.append(f"Layer rows: {rows}")
    return lines


class RunSummaryHook:
    """At the end of a run that trained models (a run writing ``<layer_class>.metrics``), log
    the results table and set it as the MLflow run's description."""

    def __init__(self) -> None:
        self._run_id: str | None = None

    @hook_impl(trylast=True)  # after kedro-mlflow's before_pipeline_run has started the run
    def before_pipeline_run(self) -> None:
        import mlflow  # noqa: PLC0415 (kedro-mlflow has imported it already)

        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None

    @hook_impl(trylast=True)  # last: after kedro-mlflow has logged the model and ended the run
    def after_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        outputs = pipeline.all_outputs()
        trained = [lc for lc in LAYER_CLASSES if f"{lc}.metrics" in outputs]
        if not trained:
            return
        layers = {lc: _section(catalog, f"{lc}.metrics") for lc in trained}
        quality = {stage: _section(catalog, f"{stage}_data_quality") for stage in QUALITY_STAGES}
        table = summary_table(
            {lc: section for lc, section in layers.items() if section},
            _section(catalog, NETWORK_METRICS) if NETWORK_METRICS in outputs else None,
            {stage: section for stage, section in quality.items() if section},
            _models_dir(catalog),
            _section(catalog, LOCO_METRICS) if LOCO_METRICS in outputs else None,
        )
        logger.info("%s", table)
        self._describe_run(table)

    def _describe_run(self, table: str) -> None:
        if self._run_id is None:
            return
        from mlflow import MlflowClient  # noqa: PLC0415

        # the run has ended (kedro-mlflow closes it before this hook): tag it by id
        MlflowClient().set_tag(self._run_id, DESCRIPTION_TAG, f"```\n{table}\n```")


def _section(catalog: CatalogProtocol, name: str) -> Section | None:
    """A report section through its catalog dataset (loaded directly: no catalog log line),
    ``None`` when the catalog has no such entry or the report no such section."""
    dataset = catalog.get(name)
    if dataset is None or not dataset.exists():
        return None
    return dataset.load()


def _models_dir(catalog: CatalogProtocol) -> str | None:
    """The folder of the fitted models, from their catalog entry (``filepath``)."""
    dataset = catalog.get(MODEL_DATASET)
    filepath = dataset._describe().get("filepath") if dataset is not None else None
    if not filepath:
        return None
    folder = Path(filepath).parent
    if folder.is_absolute() and folder.is_relative_to(Path.cwd()):
        folder = folder.relative_to(Path.cwd())  # as the catalog writes it: data/06_models/...
    return f"{folder.as_posix()}/"
