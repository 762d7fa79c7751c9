"""Layer classes, targets and the names built from them: defined once for the whole project.

``layer_class`` is what a layer does as far as the models are concerned (``convolutional``,
``pooling``, ``dense`` or ``other``); ``layer_type`` is only ever the raw type a TensorRT
engine or a framework wrote (``CaskConvolution``, ``Linear``, ...).
"""

from __future__ import annotations

#: The modelled layer classes: one modelling namespace, one feature table, two models each.
LAYER_CLASSES = ("convolutional", "pooling", "dense")
#: Every layer that is none of ``LAYER_CLASSES``: listed with empty predictions, never dropped.
OTHER = "other"
#: What each layer class has a model for: dynamic power (W above idle) and runtime (ms).
TARGETS = ("power", "runtime")
#: What the evaluation reports and plots: the trained targets and total power (dynamic + idle).
REPORTED_TARGETS = ("power", "power_total", "runtime")
#: Root of the raw datasets, relative to the project (``data/01_raw/<raw_dataset>``).
RAW_ROOT = "data/01_raw"


def model_key(layer_class: str, target: str) -> str:
    """``convolutional_power``: the key of a fitted model in a models mapping."""
    return f"{layer_class}_{target}"
