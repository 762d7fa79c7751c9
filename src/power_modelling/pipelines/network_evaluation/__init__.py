"""Network-level accuracy of the fitted models on the held-out test CNNs.

A network is evaluated by predicting it: the registry joins these nodes to the shared
inference template, and appends the result to ``modelling`` and ``__default__``.
"""

from power_modelling.pipelines.network_evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
