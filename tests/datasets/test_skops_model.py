"""Model files load without executing code: skops with a trusted-type list, pickles refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import skops.io
from kedro.io import DatasetError
from sklearn.linear_model import LinearRegression

from power_modelling.datasets import SkopsModelDataset


class _Payload:
    """Unpickling this object runs ``touch <marker>``: what a crafted model file can do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_model_round_trips_and_the_write_is_atomic(tmp_path: Path) -> None:
    model = LinearRegression().fit(np.arange(6).reshape(3, 2), [1.0, 2.0, 3.0])
    dataset = SkopsModelDataset(str(tmp_path / "models" / "m.skops"))
    dataset.save(model)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["m.skops"]  # no temp left
    np.testing.assert_allclose(dataset.load().coef_, model.coef_)


@pytest.mark.parametrize("name", ["convolutional_power.skops", "convolutional_power.pkl"])
def test_a_pickle_payload_is_refused_and_never_runs(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(DatasetError, match="not a skops model file.*can execute code"):
        SkopsModelDataset(str(path)).load()
    assert not marker.exists()


def test_a_skops_file_needing_untrusted_types_is_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    skops.io.dump({"model": LinearRegression(), "extra": _Payload(tmp_path / "x")}, path)
    with pytest.raises(DatasetError, match=r"outside the trusted list: \[.*_Payload"):
        SkopsModelDataset(str(path)).load()
    assert not (tmp_path / "x").exists()


def test_a_missing_model_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no fitted model here; train with `kedro run`"):
        SkopsModelDataset(str(tmp_path / "none.skops")).load()
