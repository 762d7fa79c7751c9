"""kedro-mlflow's model-logging dataset, answering ``exists()``."""

from __future__ import annotations

from kedro_mlflow.io.models import MlflowModelTrackingDataset


class MlflowLoggedModelDataset(MlflowModelTrackingDataset):
    """``kedro_mlflow.io.models.MlflowModelTrackingDataset`` (same arguments) that knows
    whether it has something to load: a ``model_uri`` given in ``load_args``, or a model it
    logged in this session.

    kedro-mlflow asks every dataset of the training pipeline whether it exists when the run
    ends; the parent class answers with a warning per model ("'exists()' not implemented ...
    Assuming output does not exist"), which a user can do nothing about.
    """

    def _exists(self) -> bool:
        return self._user_defined_model_uri is not None or self._last_saved_model_uri is not None
