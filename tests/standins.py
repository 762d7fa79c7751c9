"""Small fitted stand-ins for the six models, and a tiny engine, with hand-computable results."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.dummy import DummyRegressor

from power_modelling.core.layers import model_key

#: (power W, runtime ms) every stand-in predicts for its layer class.
CONSTANTS = {"convolutional": (10.0, 0.5), "pooling": (2.0, 0.1), "dense": (5.0, 0.2)}


def standin_models() -> dict[str, DummyRegressor]:
    """Six fitted estimators that predict a constant per layer class and target."""
    models = {}
    for layer_class, values in CONSTANTS.items():
        for target, value in zip(("power", "runtime"), values, strict=True):
            model = DummyRegressor(strategy="constant", constant=value)
            models[model_key(layer_class, target)] = model.fit(np.zeros((2, 1)), [value, value])
    return models


def _tensor(dims: list[int]) -> list[dict]:
    return [{"Dimensions": dims, "Format/Datatype": "FP16"}]


TINY_ENGINE = {
    "Layers": [
        {
            "Name": "conv1",
            "LayerType": "Conv2d",
            "ParameterType": "Convolution",
            "Inputs": _tensor([1, 3, 8, 8]),
            "Outputs": _tensor([1, 4, 8, 8]),
            "Kernel": [3, 3],
            "PrePadding": [1, 1],
            "PostPadding": [1, 1],
            "Stride": [1, 1],
            "Dilation": [1, 1],
            "OutMaps": 4,
            "Groups": 1,
            "Count": 2,
        },
        {
            "Name": "pool",
            "LayerType": "MaxPool2d",
            "ParameterType": "Pooling",
            "Inputs": _tensor([1, 4, 8, 8]),
            "Outputs": _tensor([1, 4, 4, 4]),
            "PoolingType": "MAX",
            "WindowSize": [2, 2],
            "Stride": [2, 2],
        },
        {
            "Name": "relu",
            "LayerType": "ReLU",
            "Inputs": _tensor([1, 4, 4, 4]),
            "Outputs": _tensor([1, 4, 4, 4]),
            "Count": 3,
        },
        {
            "Name": "fc",
            "LayerType": "Linear",
            "ParameterType": "MatrixMultiply",
            "Inputs": _tensor([1, 64]),
            "Outputs": _tensor([1, 10]),
            "OutMaps": 10,
            "InFeatures": 64,
        },
    ]
}
# By hand: 2 conv + 1 pool + 1 dense predicted, 3 ReLU other;
# runtime 2·0.5 + 0.1 + 0.2 = 1.3 ms; energy 2·10·0.5 + 2·0.1 + 5·0.2 = 11.2 mJ.
TINY_RUNTIME_MS = 1.3
TINY_ENERGY_MJ = 11.2


def tiny_engine() -> dict:
    return copy.deepcopy(TINY_ENGINE)


def expected_columns(with_idle: bool, model_set: bool = False) -> list[str]:
    """Columns of a per-layer prediction table (``model_set``: predicted with a whole model
    set, i.e. with its applicability domain and interval calibration)."""
    columns = ["layer_name", "layer_type", "layer_class", "count"]
    columns += ["power_prediction", "runtime_prediction", "problem"]
    if model_set:
        columns += ["in_domain", "domain_note", "power_lo", "power_hi", "runtime_lo", "runtime_hi"]
    return columns + (["power_total_prediction"] if with_idle else [])


def install_standin_models(
    project, models: str = "h200_isolated_v1", idle_w: float | None = None, device: str = "H200"
) -> None:
    """Write the stand-ins as the model set ``data/06_models/<models>/`` of ``project``: the
    six skops files, the measured device (idle power ``None``: unknown), and an empty
    applicability domain and interval calibration (``in_domain`` and the bounds stay empty)."""
    import json  # noqa: PLC0415

    from power_modelling.datasets import SkopsModelDataset  # noqa: PLC0415

    folder = project / "data" / "06_models" / models
    for key, model in standin_models().items():
        SkopsModelDataset(str(folder / f"{key}.skops")).save(model)
    (folder / "applicability_domain.json").write_text(json.dumps({"version": 1, "classes": {}}))
    (folder / "prediction_intervals.json").write_text(json.dumps({}))
    idle_uw = None if idle_w is None else idle_w * 1e6
    measured = {"device": {"name": device}, "precisions": ["FP16"], "batch_sizes": [1]}
    (folder / "device_idle_power.json").write_text(
        json.dumps({"avg_idle_power_uw": idle_uw, "source": "test", **measured})
    )
