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
from tests.core.conftest import make_synthetic_table


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


@pytest.fixture(scope="module")
def synthetic_table():
    return make_synthetic_table()


def _physics_model(synthetic_table):
    from power_modelling.core.loco import trainable
    from power_modelling.core.physics_estimators import ThroughputPowerRegressor

    rows = trainable(synthetic_table, "pooling", "power")
    return ThroughputPowerRegressor("pooling", n_estimators=20).fit(rows, rows["power"]), rows


TRUSTED = [
    "power_modelling.core.physics_estimators.ThroughputPowerRegressor",
    "sklearn.tree._tree.Tree",
]


def test_a_physics_model_file_holds_its_numpy_predictor(tmp_path: Path, synthetic_table) -> None:
    model, rows = _physics_model(synthetic_table)
    path = tmp_path / "pooling_power.skops"
    SkopsModelDataset(str(path), TRUSTED).save(model)
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # readable by the team, not 0600
    predictor = SkopsModelDataset(str(path), TRUSTED).load()
    estimator = SkopsModelDataset(str(path), TRUSTED, predictor=False).load()
    assert type(predictor).__name__ == "PowerPredictor"
    assert type(estimator).__name__ == "ThroughputPowerRegressor"
    np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))
    np.testing.assert_array_equal(estimator.predict(rows), model.predict(rows))
    # skops reads the same file (its own members) as before: the predictor's are extra
    assert skops.io.get_untrusted_types(file=path) == sorted(TRUSTED)


def test_the_predictor_loads_without_scikit_learn(tmp_path: Path, synthetic_table) -> None:
    import json
    import subprocess
    import sys

    model, rows = _physics_model(synthetic_table)
    path = tmp_path / "pooling_power.skops"
    SkopsModelDataset(str(path), TRUSTED).save(model)
    rows.to_parquet(tmp_path / "rows.parquet")
    code = (
        "import json, sys, pandas as pd\n"
        "from power_modelling.datasets import SkopsModelDataset\n"
        f"model = SkopsModelDataset({str(path)!r}).load()\n"
        f"values = model.predict(pd.read_parquet({str(tmp_path / 'rows.parquet')!r}))\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'skops', 'crepes') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'values': values.tolist()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    np.testing.assert_array_equal(result["values"], model.predict(rows))


def test_a_file_without_a_readable_predictor_loads_the_estimator(
    tmp_path: Path, synthetic_table
) -> None:
    import json
    import zipfile

    model, rows = _physics_model(synthetic_table)
    plain = tmp_path / "plain.skops"
    plain.write_bytes(skops.io.dumps(model))  # written before predictors existed
    assert type(SkopsModelDataset(str(plain), TRUSTED).load()).__name__ == type(model).__name__
    newer = tmp_path / "newer.skops"
    SkopsModelDataset(str(newer), TRUSTED).save(model)
    with zipfile.ZipFile(newer) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    header = json.loads(members["power_modelling/predictor.json"])
    members["power_modelling/predictor.json"] = json.dumps({**header, "version": 99}).encode()
    with zipfile.ZipFile(newer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    loaded = SkopsModelDataset(str(newer), TRUSTED).load()
    assert type(loaded).__name__ == "ThroughputPowerRegressor"
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
