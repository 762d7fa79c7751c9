"""Project pipelines: every pipeline under ``pipelines/`` is found automatically."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that make up ``kedro run`` (in data-flow order). ``prediction`` runs on its own.
DEFAULT_PIPELINES = ("ingestion", "power_mapping", "feature_engineering", "modelling")


def register_pipelines() -> dict[str, Pipeline]:
    """Register ``ingestion``, ``power_mapping``, ``feature_engineering``, ``modelling``
    (and ``prediction``) as they exist; ``__default__`` is the training chain."""
    pipelines = find_pipelines(raise_errors=False)  # TODO: True once all pipelines landed
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    return pipelines
