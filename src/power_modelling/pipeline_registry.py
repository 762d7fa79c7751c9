"""Project pipelines: every pipeline under ``pipelines/`` is found automatically, and joined
here (pipelines never import each other).

The inference template (``pipelines/inference``) is used three times: appended to
``prediction`` and to ``network_evaluation`` (under its own dataset names), and logged as the
served MLflow model (``serving.py``, by ``hooks.ServedModelHook`` at the end of a training
run). The training chain (``__default__``, and ``modelling`` on its own) ends with the
network-level evaluation.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline, pipeline

import power_modelling
from power_modelling.pipelines import inference, network_evaluation
from power_modelling.pipelines.network_evaluation.pipeline import EVALUATION_DATASETS

# Pipelines that make up ``kedro run`` (in data-flow order). ``prediction`` runs on its own.
DEFAULT_PIPELINES = ("ingestion", "power_mapping", "feature_engineering", "modelling")
#: Name of the logged model in the run and in the MLflow model registry.
SERVED_MODEL_NAME = "prediction_model"
REGISTERED_MODEL_NAME = "power_modelling"
_SERVING_PACKAGES = (
    "mlflow",
    "kedro",
    "kedro-datasets",
    "kedro-mlflow",
    "pandas",
    "numpy",
    "pyarrow",
    "scikit-learn",
)


def _pinned(package: str) -> str:
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:  # pragma: no cover
        return package


def log_model_kwargs() -> dict:
    """``mlflow.pyfunc.log_model`` arguments of the served model: explicit requirements (no
    slow inference) and the project package as code, so the model loads anywhere."""
    return {
        "name": SERVED_MODEL_NAME,
        # layer_descriptions rows hold nullable integers and lists, which MLflow's schema
        # enforcement rejects: the inference pipeline checks its input itself.
        "signature": None,
        "pip_requirements": [_pinned(package) for package in _SERVING_PACKAGES],
        "code_paths": [str(Path(power_modelling.__file__).parent)],
    }


def register_pipelines() -> dict[str, Pipeline]:
    """``ingestion``, ``power_mapping``, ``feature_engineering``, ``modelling``,
    ``network_evaluation`` and ``prediction``; ``__default__`` is the training chain."""
    pipelines = find_pipelines(raise_errors=True)
    # The template alone has a free input: it runs inside the pipelines below, not on its own.
    pipelines.pop("inference", None)
    template = inference.create_pipeline()
    if "prediction" in pipelines:
        pipelines["prediction"] = pipelines["prediction"] + template
    # Built here whether or not discovery found it (a run of `--pipelines modelling` needs it
    # too): the template under the evaluation's names, test CNNs in, their predictions out.
    evaluation = network_evaluation.create_pipeline() + pipeline(
        template,
        inputs={"prediction_layers": EVALUATION_DATASETS["prediction_layers"]},
        outputs={"layer_predictions": EVALUATION_DATASETS["layer_predictions"]},
    )
    pipelines["network_evaluation"] = evaluation
    training = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    # Kedro loads only the pipelines a run asks for (`--pipelines ingestion` finds ingestion
    # alone), so the chain is built from those present and evaluates only when it can train.
    if "modelling" not in pipelines:
        pipelines["__default__"] = training
        return pipelines
    pipelines["modelling"] = pipelines["modelling"] + evaluation
    pipelines["__default__"] = training + evaluation
    return pipelines
