"""The served MLflow model, defined in code (MLflow "models from code"): nothing is pickled.

MLflow runs this file when the model is loaded: it builds the shared inference pipeline
(``pipelines/inference``) over a catalog of the model set's files, which kedro-mlflow's
``KedroPipelineModel`` points at the logged artifacts (``load_context``). The six fitted models
are skops files read with the trusted types recorded at logging (``model_config``), so loading
the served model executes this reviewed code, never code hidden in a pickle.

Logged by ``ServedModelHook`` (hooks.py) at the end of every training run.
"""

from __future__ import annotations

import mlflow
from kedro.io import DataCatalog
from kedro_datasets.json import JSONDataset
from kedro_mlflow.mlflow import KedroPipelineModel

from power_modelling.datasets import SkopsModelDataset
from power_modelling.pipelines.inference import create_pipeline
from power_modelling.pipelines.inference.pipeline import JSON_INPUTS, LAYERS, model_datasets


def served_model(trusted_types: list[str]) -> KedroPipelineModel:
    """The inference pipeline with placeholder file paths (``load_context`` replaces them by
    the artifacts')."""
    datasets = {
        name: SkopsModelDataset(filepath=f"{name}.skops", trusted_types=trusted_types)
        for name in model_datasets().values()
    }
    for name in JSON_INPUTS:
        datasets[name] = JSONDataset(filepath=f"{name}.json")
    return KedroPipelineModel(
        pipeline=create_pipeline(), catalog=DataCatalog(datasets=datasets), input_name=LAYERS
    )


# MLflow executes this file to load the model: the trusted types come from its model_config.
_config = mlflow.models.ModelConfig(development_config={"trusted_types": []})
mlflow.models.set_model(served_model(list(_config.get("trusted_types"))))
