"""``kedro run --pipelines network_evaluation``: re-evaluate the saved models on the test CNNs."""

from kedro.pipeline import Pipeline

from power_modelling.pipelines.prediction.pipeline import create_network_evaluation_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """The network evaluation of :mod:`power_modelling.pipelines.prediction.pipeline`."""
    return create_network_evaluation_pipeline()
