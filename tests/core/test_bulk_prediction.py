"""Many networks at once: the batch reader and predictor give what network-by-network gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from benchmarks.generate_networks import generate_files
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.pipeline import make_pipeline

from power_modelling.core.engines import describe_layers
from power_modelling.core.features import FEATURE_COLUMNS, build_features, precision_of
from power_modelling.core.layers import LAYER_CLASSES, TARGETS, model_key
from power_modelling.core.networks import (
    NetworkOptions,
    describe_networks,
    read_network,
    read_network_table,
    read_networks,
    select_networks,
)
from power_modelling.core.predictor import predict_layers, summarise, summarise_networks
from tests.helpers import PROJECT_ROOT

ONNX_LENET = PROJECT_ROOT / "tests" / "data" / "onnx_models" / "lenet.onnx"


def _loaders(files: dict[str, bytes]) -> dict:
    return {path: (lambda data=data: data) for path, data in files.items()}


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    """40 generated engines (every bundled one, widths and input sizes varied), an ONNX
    model between them and two bad files."""
    files = generate_files(40, seed=3)
    files["m_lenet.onnx"] = ONNX_LENET.read_bytes()
    files["n_broken.json"] = b"{not json"
    files["o_no_layers.json"] = json.dumps({"Bindings": []}).encode()
    return files


@pytest.fixture(scope="module")
def models() -> dict:
    """Six small tree models of the features: every row's prediction depends on its own
    features only, so batching must not change a single value."""
    features = build_features(
        pd.concat(
            [describe_layers(json.loads(data), p) for p, data in generate_files(30, 1).items()]
        )
    )
    fitted = {}
    for layer_class in LAYER_CLASSES:
        rows = features[features["layer_class"] == layer_class]
        columns = [c for c in FEATURE_COLUMNS[layer_class] if c != "batch_size"]
        for number, target in enumerate(TARGETS):
            y = np.log1p(rows["flops"].to_numpy()) * (number + 1)
            model = make_pipeline(
                _Columns(columns), ExtraTreesRegressor(n_estimators=5, random_state=0)
            )
            fitted[model_key(layer_class, target)] = model.fit(rows, y)
    return fitted


class _Columns:
    """Selects feature columns (a stateless scikit-learn step)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: object = None) -> _Columns:  # noqa: N803
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return X[self.columns].to_numpy(dtype=float)


def _missing_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing text as ``None`` (a frame of one network that has no weight types at all holds
    ``None``, a table with some holds NaN: both are missing)."""
    frame = frame.copy()
    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].where(frame[column].notna(), None)
    return frame


def test_the_table_of_many_networks_is_their_files_read_one_by_one(files: dict) -> None:
    table, infos, errors = read_network_table(_loaders(files), "folder", NetworkOptions())
    assert set(errors) == {"n_broken", "o_no_layers"}
    assert "folder/n_broken.json: not valid JSON" in errors["n_broken"]
    readable = {n: p for n, p in select_networks(list(files)).items() if n not in errors}
    assert list(infos) == list(readable)  # engines in name order, then ONNX models
    one_by_one = []
    for network, path in readable.items():
        layers, info = read_network(files[path], path, f"folder/{path}", NetworkOptions())
        one_by_one.append(layers.assign(network=network))
        if path.endswith(".json"):  # what the per-network reader has always said
            dims = layers["input_dims"].iloc[0]
            info = {**info, "batch_size": int(dims[0]), "precision": precision_of(layers)}
        assert infos[network] == {**info, "device": None, "source": f"folder/{path}"}
    expected = pd.concat(one_by_one, ignore_index=True)
    expected = expected[["network", *[c for c in expected if c != "network"]]]
    pd.testing.assert_frame_equal(_missing_as_none(table), _missing_as_none(expected))
    # the per-network reader is the table split by network
    frames, _, _ = read_networks(_loaders(files), "folder", NetworkOptions())
    assert list(frames) == list(readable)
    for network, frame in frames.items():
        alone = one_by_one[list(readable).index(network)].drop(columns="network")
        pd.testing.assert_frame_equal(_missing_as_none(frame), _missing_as_none(alone))


def test_bulk_predictions_equal_network_by_network_predictions(files: dict, models: dict) -> None:
    table, infos, _ = read_network_table(_loaders(files), "folder", NetworkOptions())
    bulk = predict_layers(table, models, idle_power_w=100.0)
    per_network = [
        predict_layers(rows.drop(columns="network"), models, 100.0).assign(network=network)
        for network, rows in table.groupby("network", sort=False)
    ]
    expected = pd.concat(per_network, ignore_index=True)
    pd.testing.assert_frame_equal(bulk, expected[bulk.columns])
    assert bulk["runtime_prediction"].notna().sum() > 500  # modelled layers of every class
    summary = summarise_networks(bulk).set_index("network")
    for network, rows in bulk.groupby("network", sort=False):
        one = summarise(rows.drop(columns="network"), str(network))
        assert summary.loc[network].to_dict() == {k: v for k, v in one.items() if k != "network"}
    assert list(summary.index) == list(infos)


def test_describe_networks_names_networks_after_their_files(tmp_path: Path) -> None:
    generated = generate_files(3, seed=5)
    paths = []
    for name, data in generated.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    (tmp_path / "bad.json").write_text("[]")
    first = paths[0].name.removesuffix(".json")
    (tmp_path / f"{first}.meta.json").write_text(json.dumps({"device": {"name": "Orin"}}))
    table, infos, errors = describe_networks([*paths, tmp_path / "bad.json"])
    assert list(infos) == sorted(p.name.removesuffix(".json") for p in paths)
    assert table["network"].unique().tolist() == list(infos)
    assert infos[first]["device"] == {"name": "Orin"}
    assert errors["bad"].startswith(f"{tmp_path / 'bad.json'}: expected an engine description")
    with pytest.raises(ValueError, match="two networks would be named"):
        describe_networks([paths[0], tmp_path / "sub" / paths[0].name])
