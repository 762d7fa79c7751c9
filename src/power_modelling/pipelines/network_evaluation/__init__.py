"""Network-level accuracy of the fitted models on the held-out test CNNs.

Its nodes share the prediction pipeline's code (a network is evaluated by predicting it); the
registry also appends it to ``modelling`` and ``__default__``.
"""

from power_modelling.pipelines.network_evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
