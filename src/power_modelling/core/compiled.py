"""Fitted physics estimators as plain NumPy: predicting without importing scikit-learn.

A prediction run's start-up was dominated by its models, not by its work: importing
scikit-learn (and SciPy under it) and rebuilding six tree ensembles from skops files took
about 2.7 s of a 6 s one-network ``kedro run --pipelines prediction``, for predicting ~25
layers. The predictors here hold what prediction needs, and nothing else, as NumPy arrays:

- :class:`TreeEnsemble`: the nodes of an extra-trees ensemble (or of a histogram gradient
  boosting model), walked for all trees and rows at once; for large inputs (many networks)
  the same nodes are handed to scikit-learn's compiled tree walker, which is faster there
  and gives the same numbers (both compare the same ``float32`` / ``float64`` feature values
  with the same thresholds);
- :class:`RuntimePredictor` / :class:`PowerPredictor`: the prediction formulas of
  :class:`~power_modelling.core.physics_estimators.FixedCostRuntimeRegressor` and
  :class:`~power_modelling.core.physics_estimators.ThroughputPowerRegressor`, which predict
  through them too (one implementation: the estimator's own ``predict`` builds a predictor
  over its scikit-learn trees).

:func:`to_state` / :func:`from_state` turn a predictor into a JSON header plus named arrays
and back (no pickle: ``SkopsModelDataset`` stores them inside the model's skops file). Only
NumPy and pandas are imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from power_modelling.core.physics_features import (
    PHYSICS_COLUMNS,
    add_physics_features,
    device_trend,
)

#: Version of the state layout written by :func:`to_state`; :data:`STATE_VERSIONS_READ` are
#: read back (2 added the kernel fallback: a version-1 file predicts as it always did, an
#: older reader meets version 2 with an error and loads the estimator instead).
STATE_VERSION = 2
STATE_VERSIONS_READ = (1, 2)
#: Above this many (row, tree) pairs, scikit-learn's tree walker predicts (NumPy walks every
#: pair level by level: fine for a few networks, slower than compiled code for thousands).
NUMPY_PAIRS_MAX = 400_000
#: How far beyond the trained range (log units: 10x) the ``shape`` power trend extrapolates.
SHAPE_HEADROOM = float(np.log(10.0))


class NotCompilable(TypeError):
    """The estimator has no NumPy predictor (not a physics estimator, or trees we cannot read)."""


# --- feature matrices (shared with physics_estimators) -----------------------------------
def physics_frame(X: Any, columns: tuple[str, ...], context: str) -> pd.DataFrame:  # noqa: N803
    """``X`` as a frame with ``columns`` (physics features added when missing)."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{context}: expected the feature table as a DataFrame, got {type(X)}")
    missing = [c for c in columns if c not in X.columns]
    if missing and any(c in PHYSICS_COLUMNS for c in missing) and "layer_class" in X.columns:
        X = add_physics_features(X)  # noqa: N806
        missing = [c for c in columns if c not in X.columns]
    if missing:
        raise KeyError(f"{context}: feature column(s) {missing} missing from the table")
    return X


def log_matrix(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """``log1p`` of the columns as floats (NaN stays NaN)."""
    values = frame.loc[:, list(columns)].apply(pd.to_numeric, errors="coerce")
    return np.log1p(np.clip(values.to_numpy(dtype="float64"), 0.0, None))


# --- trees -------------------------------------------------------------------------------
class TreeEnsemble:
    """Regression trees as flat node arrays: ``kind`` ``"mean"`` (a forest: the mean of the
    trees) or ``"sum"`` (boosting: ``baseline`` + the sum). ``left`` / ``right`` are -1 at
    leaves; ``offsets[i]`` is tree ``i``'s first node. ``x_dtype``: the precision the trees
    compare features in (forests: ``float32``, as scikit-learn casts them)."""

    FIELDS = ("left", "right", "feature", "threshold", "value", "offsets")

    def __init__(
        self,
        *,
        kind: str,
        x_dtype: str,
        n_features: int,
        baseline: float,
        max_depth: int,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        value: np.ndarray,
        offsets: np.ndarray,
    ) -> None:
        if kind not in ("mean", "sum"):
            raise ValueError(f"TreeEnsemble kind '{kind}' is not 'mean' or 'sum'")
        self.kind, self.x_dtype, self.n_features = kind, x_dtype, int(n_features)
        self.baseline, self.max_depth = float(baseline), int(max_depth)
        self.left, self.right = np.asarray(left), np.asarray(right)
        self.feature, self.threshold = np.asarray(feature), np.asarray(threshold)
        self.value, self.offsets = np.asarray(value), np.asarray(offsets)
        self._walk: tuple[np.ndarray, ...] | None = None
        self._sklearn: list[Any] | None = None

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    # construction from scikit-learn (attributes only: nothing is imported)
    @classmethod
    def from_sklearn(cls, ensemble: Any) -> TreeEnsemble:
        name = type(ensemble).__name__
        if name in ("ExtraTreesRegressor", "RandomForestRegressor"):
            return cls._from_forest(ensemble)
        if name == "HistGradientBoostingRegressor":
            return cls._from_boosting(ensemble)
        raise NotCompilable(f"trees of type {name} have no NumPy predictor")

    @classmethod
    def _from_forest(cls, forest: Any) -> TreeEnsemble:
        if getattr(forest, "n_outputs_", 1) != 1:
            raise NotCompilable("multi-output forests have no NumPy predictor")
        trees = [estimator.tree_ for estimator in forest.estimators_]
        return cls._concatenate(
            kind="mean",
            x_dtype="float32",
            n_features=forest.n_features_in_,
            baseline=0.0,
            max_depth=max(tree.max_depth for tree in trees),
            parts=[
                (
                    tree.children_left,
                    tree.children_right,
                    tree.feature,
                    tree.threshold,
                    tree.value[:, 0, 0],
                )
                for tree in trees
            ],
        )

    @classmethod
    def _from_boosting(cls, model: Any) -> TreeEnsemble:
        loss = type(getattr(model, "_loss", None)).__name__
        if loss != "HalfSquaredError" or getattr(model, "n_trees_per_iteration_", 1) != 1:
            raise NotCompilable(f"gradient boosting with loss {loss} has no NumPy predictor")
        parts, depth = [], 0
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise NotCompilable("categorical splits have no NumPy predictor")
            leaf = nodes["is_leaf"].astype(bool)
            left = np.where(leaf, -1, nodes["left"].astype("int64"))
            right = np.where(leaf, -1, nodes["right"].astype("int64"))
            feature = np.where(leaf, -2, nodes["feature_idx"])
            parts.append((left, right, feature, nodes["num_threshold"], nodes["value"]))
            depth = max(depth, int(nodes["depth"].max()))
        return cls._concatenate(
            kind="sum",
            x_dtype="float64",
            n_features=model.n_features_in_,
            baseline=float(np.ravel(model._baseline_prediction)[0]),
            max_depth=depth,
            parts=parts,
        )

    @classmethod
    def _concatenate(cls, *, parts: list[tuple[np.ndarray, ...]], **settings: Any) -> TreeEnsemble:
        sizes = [len(part[0]) for part in parts]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype("int64")
        columns = list(zip(*parts, strict=True))
        return cls(
            left=np.concatenate(columns[0]).astype("int32"),
            right=np.concatenate(columns[1]).astype("int32"),
            feature=np.concatenate(columns[2]).astype("int32"),
            threshold=np.concatenate(columns[3]).astype("float64"),
            value=np.concatenate(columns[4]).astype("float64"),
            offsets=offsets,
            **settings,
        )

    # prediction
    def predict(self, matrix: np.ndarray) -> np.ndarray:
        X = np.asarray(matrix, dtype="float64")  # noqa: N806
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"TreeEnsemble: expected a matrix of {self.n_features} feature columns, "
                f"got shape {X.shape}"
            )
        if self.x_dtype == "float32":
            X = X.astype("float32")  # noqa: N806 (the precision the splits were learned in)
        if len(X) == 0:
            return np.zeros(0)
        if self.kind == "mean" and len(X) * self.n_trees > NUMPY_PAIRS_MAX:
            per_tree = (tree.predict(X).reshape(len(X)) for tree in self._sklearn_trees())
            total = np.zeros(len(X))
            for values in per_tree:  # the order scikit-learn sums them in
                total += values
            return total / self.n_trees
        values = self._walk_all(X.astype("float64"))
        if self.kind == "mean":
            return values.sum(axis=0) / self.n_trees
        return self.baseline + values.sum(axis=0)

    def _walk_all(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Leaf values, one row per tree: every (tree, row) pair steps down one level per
        iteration (leaves point to themselves), ``max_depth`` iterations."""
        left, right, feature, threshold = self._walk_arrays()
        node = np.broadcast_to(self.offsets[:-1, None], (self.n_trees, len(X))).copy()
        rows = np.arange(len(X))
        flat = X.T.ravel()  # feature f of row r at f * n + r
        for _ in range(self.max_depth):
            go_left = flat[feature[node] * len(X) + rows] <= threshold[node]
            node = np.where(go_left, left[node], right[node])
        return self.value[node]

    def _walk_arrays(self) -> tuple[np.ndarray, ...]:
        """Global child indices; a leaf's children are itself, its feature 0 and threshold
        +inf (every later step stays on it)."""
        if self._walk is None:
            tree_of = np.repeat(np.arange(self.n_trees), np.diff(self.offsets))
            start = self.offsets[:-1][tree_of]
            own = np.arange(len(self.left))
            leaf = self.left < 0
            left = np.where(leaf, own, self.left + start)
            right = np.where(leaf, own, self.right + start)
            feature = np.where(leaf, 0, self.feature)
            threshold = np.where(leaf, np.inf, self.threshold)
            self._walk = (left, right, feature, threshold)
        return self._walk

    def _sklearn_trees(self) -> list[Any]:
        """scikit-learn ``Tree`` objects over the same nodes (imported here only)."""
        if self._sklearn is None:
            from sklearn.tree._tree import NODE_DTYPE, Tree  # noqa: PLC0415

            trees = []
            for start, end in zip(self.offsets[:-1], self.offsets[1:], strict=True):
                nodes = np.zeros(end - start, dtype=NODE_DTYPE)
                nodes["left_child"] = self.left[start:end]
                nodes["right_child"] = self.right[start:end]
                nodes["feature"] = self.feature[start:end]
                nodes["threshold"] = self.threshold[start:end]
                tree = Tree(self.n_features, np.array([1], dtype=np.intp), 1)
                tree.__setstate__(
                    {
                        "max_depth": self.max_depth,
                        "node_count": int(end - start),
                        "nodes": nodes,
                        "values": self.value[start:end].reshape(-1, 1, 1).copy(),
                    }
                )
                trees.append(tree)
            self._sklearn = trees
        return self._sklearn

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        header = {
            "type": "TreeEnsemble",
            "kind": self.kind,
            "x_dtype": self.x_dtype,
            "n_features": self.n_features,
            "baseline": self.baseline,
            "max_depth": self.max_depth,
        }
        return header, {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_arrays(cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        settings = {k: header[k] for k in ("kind", "x_dtype", "n_features", "baseline")}
        return cls(
            **settings,
            max_depth=header["max_depth"],
            **{name: arrays[name] for name in cls.FIELDS},
        )


def _tree_predict(trees: Any, features: np.ndarray, rows: int) -> np.ndarray:
    """Tree predictions of the rows with every feature (NaN elsewhere)."""
    usable = np.isfinite(features).all(axis=1)
    predicted = np.full(rows, np.nan)
    if usable.any():
        predicted[usable] = trees.predict(features[usable])
    return predicted


# --- kernels never trained on ------------------------------------------------------------
def _kernel_matrix(frame: pd.DataFrame, kernel_features: tuple[str, ...]) -> np.ndarray:
    """The rows' ``kernel_features`` as floats (NaN where not numeric)."""
    values = frame.loc[:, list(kernel_features)].apply(pd.to_numeric, errors="coerce")
    return values.to_numpy(dtype="float64")


def kernel_signatures(frame: pd.DataFrame, kernel_features: tuple[str, ...]) -> np.ndarray:
    """The distinct combinations of ``kernel_features`` among the rows (a ``(k, n)`` array)."""
    return np.unique(_kernel_matrix(frame, kernel_features), axis=0)


def unseen_kernels(
    frame: pd.DataFrame, kernel_features: tuple[str, ...], seen: np.ndarray | None
) -> np.ndarray:
    """Rows whose combination of ``kernel_features`` is none of ``seen`` (all False without
    kernel features)."""
    if not kernel_features or seen is None:
        return np.zeros(len(frame), dtype=bool)
    rows = _kernel_matrix(frame, kernel_features)
    matches = (rows[:, None, :] == np.asarray(seen)[None, :, :]).all(axis=2)
    return ~matches.any(axis=1)


# --- the physics estimators' prediction ----------------------------------------------------
class RuntimePredictor:
    """Runtime (ms) = fixed cost of the shape (trees, clipped to the trained range, decaying
    to the launch floor below the smallest trained work) + the device's work term. A layer
    whose kernel (``kernel_features``' combination) no training layer had gets the device
    trend's floor as its fixed cost: its prediction is the device trend itself."""

    ARRAYS = ("log_fixed_range", "monotone_min", "kernels_seen")

    def __init__(
        self,
        *,
        monotone_features: tuple[str, ...],
        shape_features: tuple[str, ...],
        device_constants: Mapping[str, float],
        log_fixed_range: np.ndarray,
        monotone_min: np.ndarray,
        extrapolation_decay: float,
        trees: Any,
        kernel_features: tuple[str, ...] = (),
        kernels_seen: np.ndarray | None = None,
    ) -> None:
        self.kernel_features = tuple(kernel_features)
        self.kernels_seen = None if kernels_seen is None else np.asarray(kernels_seen, "float64")
        self.monotone_features = tuple(monotone_features)
        self.shape_features = tuple(shape_features)
        self.device_constants = {k: float(v) for k, v in device_constants.items()}
        self.log_fixed_range = np.asarray(log_fixed_range, dtype="float64")
        self.monotone_min = np.asarray(monotone_min, dtype="float64")
        self.extrapolation_decay = float(extrapolation_decay)
        self.trees = trees

    def fixed_cost(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """The fixed-cost part of the prediction (ms), NaN where a feature is missing."""
        frame = physics_frame(
            X,
            (*self.monotone_features, *self.shape_features, *self.kernel_features),
            "FixedCostRuntimeRegressor",
        )
        monotone = log_matrix(frame, self.monotone_features)
        features = np.hstack([monotone, log_matrix(frame, self.shape_features)])
        log_fixed = _tree_predict(self.trees, features, len(frame))
        fixed = np.exp(np.clip(log_fixed, *self.log_fixed_range))
        floor = self.device_constants["launch_floor_ms"]
        below = np.clip(self.monotone_min - monotone, 0.0, None).sum(axis=1)
        weight = np.exp(-self.extrapolation_decay * below)
        fixed = floor + (fixed - floor) * weight
        return np.where(self.kernel_fallback(frame), self.device_constants["trend_floor_ms"], fixed)

    def kernel_fallback(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Rows predicted from the device trend: their kernel no training layer ran."""
        frame = physics_frame(X, self.kernel_features, "FixedCostRuntimeRegressor")
        return unseen_kernels(frame, self.kernel_features, self.kernels_seen)

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        frame = physics_frame(
            X,
            (*self.monotone_features, *self.shape_features, "flops", "bytes_total"),
            "FixedCostRuntimeRegressor.predict",
        )
        work, _ = device_trend(
            frame["flops"].to_numpy(dtype="float64"),
            frame["bytes_total"].to_numpy(dtype="float64"),
            self.device_constants,
        )
        return self.fixed_cost(frame) + work

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        header = {
            "type": "RuntimePredictor",
            "monotone_features": list(self.monotone_features),
            "shape_features": list(self.shape_features),
            "device_constants": self.device_constants,
            "extrapolation_decay": self.extrapolation_decay,
            "kernel_features": list(self.kernel_features),
        }
        return header, {
            **{
                name: getattr(self, name) for name in self.ARRAYS if getattr(self, name) is not None
            },
            "trees": self.trees,
        }


def work_rates(frame: pd.DataFrame, device_constants: Mapping[str, float]) -> np.ndarray:
    """The work features dynamic power may only grow with: ``log u`` of the device
    utilisation ``u = work / (floor + work)`` of the runtime trend (rises with FLOPs and bytes
    and saturates, so ``log u <= 0``), ``log(1 + work / floor)`` and ``log(batch size)``;
    fitting and prediction share them."""
    work, trend = device_trend(
        frame["flops"].to_numpy(dtype="float64"),
        frame["bytes_total"].to_numpy(dtype="float64"),
        device_constants,
    )
    return np.column_stack(
        [
            np.log(np.maximum(work / trend, 1e-12)),
            np.log1p(work / device_constants["trend_floor_ms"]),
            np.log(frame["batch_size"].to_numpy(dtype="float64")),
        ]
    )


class PowerPredictor:
    """Dynamic power (W above idle), ``trend`` ``"throughput"`` (utilisation trend + trees),
    ``"shape"`` (a standardised linear trend on capped shape features + trees) or
    ``"blend"`` (the geometric mean of its ``members``). A layer whose kernel
    (``kernel_features``' combination) no training layer had draws the class's measured
    ``energy`` (mJ per FLOP, mJ per byte) at the rate the device trend runs its work (the
    runtime its runtime model falls back to as well)."""

    ARRAYS = (
        "kernels_seen",
        "energy",
        "residual_range",
        "coef",
        "shape_max",
        "trend_range",
        "scaler_mean",
        "scaler_scale",
        "lasso_coef",
    )

    def __init__(
        self,
        *,
        trend: str,
        shape_features: tuple[str, ...] = (),
        device_constants: Mapping[str, float] | None = None,
        trees: Any = None,
        residual_range: np.ndarray | None = None,
        coef: np.ndarray | None = None,
        shape_max: np.ndarray | None = None,
        trend_range: np.ndarray | None = None,
        scaler_mean: np.ndarray | None = None,
        scaler_scale: np.ndarray | None = None,
        lasso_coef: np.ndarray | None = None,
        lasso_intercept: float = 0.0,
        members: tuple[PowerPredictor, ...] = (),
        kernel_features: tuple[str, ...] = (),
        kernels_seen: np.ndarray | None = None,
        energy: np.ndarray | None = None,
    ) -> None:
        self.kernel_features = tuple(kernel_features)
        self.kernels_seen = None if kernels_seen is None else np.asarray(kernels_seen, "float64")
        self.energy = None if energy is None else np.asarray(energy, "float64")
        self.trend = trend
        self.shape_features = tuple(shape_features)
        self.device_constants = {k: float(v) for k, v in (device_constants or {}).items()}
        self.trees = trees
        self.residual_range = residual_range
        self.coef, self.shape_max = coef, shape_max
        self.trend_range = trend_range
        self.scaler_mean, self.scaler_scale = scaler_mean, scaler_scale
        self.lasso_coef, self.lasso_intercept = lasso_coef, float(lasso_intercept)
        self.members = tuple(members)

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        power = self._learned(X)
        if self.energy is None:
            return power
        frame = physics_frame(
            X, (*self.kernel_features, "flops", "bytes_total"), "ThroughputPowerRegressor"
        )
        unseen = unseen_kernels(frame, self.kernel_features, self.kernels_seen)
        if not unseen.any():
            return power
        # each kind of work at the rate the device trend runs it (its floor plus that work's
        # own term): non-decreasing in FLOPs and in bytes, each on its own
        flops = frame["flops"].to_numpy(dtype="float64")
        traffic = frame["bytes_total"].to_numpy(dtype="float64")
        _, compute_time = device_trend(flops, np.zeros_like(traffic), self.device_constants)
        _, memory_time = device_trend(np.zeros_like(flops), traffic, self.device_constants)
        drawn = self.energy[0] * flops / compute_time + self.energy[1] * traffic / memory_time
        return np.where(unseen, drawn, power)

    def _learned(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """The trend-and-trees prediction (every kernel)."""
        if self.trend == "blend":
            logs = [np.log(member.predict(X)) for member in self.members]
            return np.exp(np.mean(logs, axis=0))
        frame = physics_frame(
            X,
            (*self.shape_features, "flops", "bytes_total", "batch_size"),
            "ThroughputPowerRegressor.predict",
        )
        shape_matrix = log_matrix(frame, self.shape_features)
        if self.trend == "throughput":
            rates = work_rates(frame, self.device_constants)
            base = np.column_stack([rates[:, 0], np.ones(len(frame))]) @ self.coef
            features = np.hstack([rates, shape_matrix])
        else:
            clipped = np.minimum(np.nan_to_num(shape_matrix), self.shape_max + SHAPE_HEADROOM)
            scaled = (clipped - self.scaler_mean) / self.scaler_scale
            base = scaled @ self.lasso_coef + self.lasso_intercept
            if self.trend_range is not None:
                # at most the trend's largest trained value (power saturates: a negative
                # coefficient sent a layer far smaller than any trained one, LeNet's dense
                # beside ResNets', to 1e14 W), down to 10x below its smallest (tiny layers
                # draw little; holding them at the smallest trained trend tripled LeNet's
                # dense power error)
                base = np.clip(base, self.trend_range[0] - SHAPE_HEADROOM, self.trend_range[1])
            features = shape_matrix
        residual = _tree_predict(self.trees, features, len(frame))
        return np.exp(base + np.clip(residual, *self.residual_range))

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        header = {
            "type": "PowerPredictor",
            "trend": self.trend,
            "kernel_features": list(self.kernel_features),
            "shape_features": list(self.shape_features),
            "device_constants": self.device_constants,
            "lasso_intercept": self.lasso_intercept,
        }
        parts = {
            name: getattr(self, name) for name in self.ARRAYS if getattr(self, name) is not None
        }
        if self.trees is not None:
            parts["trees"] = self.trees
        for number, member in enumerate(self.members):
            parts[f"member{number}"] = member
        header["members"] = len(self.members)
        return header, parts


# --- state: a JSON header and named arrays -------------------------------------------------
def to_state(predictor: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(header, arrays)``: JSON-able header, arrays named by their path (``member0/trees/
    left``); nested predictors are headers inside the header."""
    arrays: dict[str, np.ndarray] = {}

    def encode(obj: Any, path: str) -> dict[str, Any]:
        if not hasattr(obj, "state"):
            raise NotCompilable(f"{type(obj).__name__} has no NumPy state")
        header, parts = obj.state()
        children = {}
        for name, part in parts.items():
            key = f"{path}{name}"
            if isinstance(part, np.ndarray):
                arrays[key] = part
                children[name] = {"array": key}
            else:
                children[name] = encode(part, f"{key}/")
        return {**header, "parts": children}

    header = encode(predictor, "")
    return {"version": STATE_VERSION, "predictor": header}, arrays


def from_state(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Any:
    """The predictor :func:`to_state` described."""
    if header.get("version") not in STATE_VERSIONS_READ:
        raise ValueError(
            f"predictor state version {header.get('version')} is not one of {STATE_VERSIONS_READ}"
        )

    def decode(node: Mapping[str, Any]) -> Any:
        parts = {
            name: arrays[child["array"]] if "array" in child else decode(child)
            for name, child in node["parts"].items()
        }
        kind = node["type"]
        if kind == "TreeEnsemble":
            return TreeEnsemble.from_arrays(node, parts)
        if kind == "RuntimePredictor":
            return RuntimePredictor(
                monotone_features=tuple(node["monotone_features"]),
                shape_features=tuple(node["shape_features"]),
                device_constants=node["device_constants"],
                extrapolation_decay=node["extrapolation_decay"],
                kernel_features=tuple(node.get("kernel_features", ())),
                **parts,
            )
        if kind == "PowerPredictor":
            members = tuple(parts.pop(f"member{i}") for i in range(int(node["members"])))
            return PowerPredictor(
                trend=node["trend"],
                shape_features=tuple(node["shape_features"]),
                device_constants=node["device_constants"],
                lasso_intercept=node["lasso_intercept"],
                members=members,
                kernel_features=tuple(node.get("kernel_features", ())),
                **parts,
            )
        raise ValueError(f"unknown predictor type '{kind}' in a model file")

    return decode(header["predictor"])
