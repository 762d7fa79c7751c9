"""Estimators that cannot invert physics: more work never predicts less runtime or power.

Two scikit-learn regressors, fitted per layer class on a feature table with the columns of
:func:`~power_modelling.core.physics_features.add_physics_features` (added when missing and
the table has ``layer_class``). ``.predict(table)`` returns natural units, like the pipeline's
estimators: ms per execution, W above idle.

:class:`FixedCostRuntimeRegressor` (runtime)::

    runtime = fixed_cost(shape) + a·flops/peak + b·bytes/bandwidth

The marginal cost of work (``a``, ``b``, peak, bandwidth) is the device's
(:func:`~power_modelling.core.physics_features.fit_device_constants`, fitted on all layer
classes of the training CNNs). What it does not explain is the layer's fixed cost (launch,
scheduling, an under-filled GPU, the kernel the library picked), learned in log space by
extra trees from *per-item* shape features only. Batch size, FLOPs and bytes never reach the
trees, so at a fixed shape the prediction grows with work through the work term alone: at
batch 8 a layer costs its batch-1 fixed cost plus 8x its work (runtime ∝ work above the
floor; on the bundled engines the median batch-8 / batch-1 ratio is 1.6 for convolutions,
~1.1 for pooling and dense layers, at most 6.6 for VGG's largest convolutions). The fixed cost
is clipped to its trained range (extrapolation follows the work term, never jumps), is
non-decreasing in the per-item work (``monotonic_cst``; not for dense, see
:data:`RUNTIME_CONSTRAIN_SIZE`), and below the smallest trained layer decays towards the
launch floor (a far smaller layer runs at the floor, not at the smallest trained layer's
fixed cost: LeNet's layers).

:class:`ThroughputPowerRegressor` (dynamic power), in log space, ``trend``:

- ``"throughput"``: ``c0 + c1·log u`` (``c1 >= 0``), ``u = work / (floor + work)`` the device
  utilisation of the runtime trend (rises with FLOPs and bytes, saturates at 1: power is
  bounded), plus extra trees on the residual that are non-decreasing in ``log u``,
  ``log(1 + work/floor)`` and ``log batch`` and free in per-item shape features;
- ``"shape"``: a Lasso on per-item shape features (inputs capped at 10x the trained maximum,
  the trend at its largest trained value, down to 10x below its smallest) with
  extra trees on its residuals: the current ``trend_extra_trees`` candidate made
  batch-invariant (power does not change with batch size: conservatively flat);
- ``"blend"`` (default): the geometric mean of the two. Both are non-decreasing in work at a
  fixed shape, so is their mean. Leave-one-CNN-out total-power RMSPE conv / pool / dense:
  throughput 6.8 / 1.2 / 4.9 %, shape 6.1 / 1.2 / 5.5 %, blend 6.2 / 1.2 / 5.1 %; holding
  out whole families: 12.3 / 7.4 / 11.8, 14.5 / 5.9 / 23.3, 12.8 / 6.6 / 9.1 %.

Attributes are NumPy arrays, floats, strings, tuples, dicts of floats and scikit-learn
estimators: picklable, and loadable by skops with :data:`SKOPS_TRUSTED_TYPES`. Both predict
through :mod:`~power_modelling.core.compiled`; ``predictor(compiled=True)`` is the same formula
with the trees as NumPy arrays, what a model file holds for prediction without scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor
from sklearn.linear_model import LassoCV
from sklearn.preprocessing import StandardScaler

from power_modelling.core.compiled import (
    PowerPredictor,
    RuntimePredictor,
    TreeEnsemble,
    kernel_signatures,
    work_rates,
)
from power_modelling.core.compiled import log_matrix as _matrix
from power_modelling.core.compiled import physics_frame as _physics_frame
from power_modelling.core.physics_features import (
    DEVICE_CONSTANT_KEYS,
    device_trend,
    fit_device_constants,
)

#: Dotted names skops must be told to trust for these estimators (sklearn's own estimator
#: classes are trusted by default; numpy / sklearn internals listed where skops asks).
SKOPS_TRUSTED_TYPES = [
    "power_modelling.core.physics_estimators.FixedCostRuntimeRegressor",
    "power_modelling.core.physics_estimators.ThroughputPowerRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
]

#: Per-item work features of the fixed cost (trees non-decreasing in them).
RUNTIME_MONOTONE: dict[str, tuple[str, ...]] = {
    "convolutional": (
        "flops_per_item",
        "input_bytes_per_item",
        "output_bytes_per_item",
        "weight_bytes",
    ),
    "pooling": ("flops_per_item", "input_bytes_per_item", "output_bytes_per_item"),
    "dense": ("flops_per_item", "input_bytes_per_item", "output_bytes_per_item", "weight_bytes"),
}
#: Shape features of the fixed cost (free). Channel alignments (``physics_features._alignment``)
#: tell kernels apart: convolutions by their output channels (grouped CV 22.9 -> 21.4 %; with
#: the input channels too, leave-one-family-out got worse: 26.6 against 25.9 %), dense layers
#: by both GEMM sizes (grouped CV 15.8 -> 15.6 %, leave-one-family-out dense 30.0 -> 26.5 %);
#: not pooling (no gain). Numeric ``groups`` rather than the depthwise flag:
#: with the flag the trees treat depthwise as one category and give a family's 3x3 depthwise
#: layers the fixed cost of another family's 7x7 ones (leave-one-family-out 52 % vs 34 %).
RUNTIME_SHAPE: dict[str, tuple[str, ...]] = {
    "convolutional": (
        "input_size_0",
        "input_size_1",
        "output_size_0",
        "output_size_1",
        "kernel_area",
        "stride_0",
        "groups",
        "out_alignment",
    ),
    "pooling": (
        "input_size_0",
        "input_size_1",
        "output_size_1",
        "kernel_area",
        "stride_0",
        "pool_max",
        "pool_avg",
        "pool_global",
        "pool_adaptive",
    ),
    "dense": ("gemm_k", "gemm_n", "rows_per_item", "in_alignment", "out_alignment"),
}
#: Whether the fixed cost may only grow with the per-item work (a larger layer is never
#: cheaper to launch). Not needed for monotonicity in work at a fixed shape (the fixed cost
#: does not see batch size, FLOPs or bytes); off for dense, where it made GEMMs with many rows
#: per item (ConvNeXt's MLPs) inherit the largest GEMV's fixed cost (leave-one-family-out
#: dense runtime 51 % constrained, 29 % free; convolution / pooling do better constrained).
RUNTIME_CONSTRAIN_SIZE = {"convolutional": True, "pooling": True, "dense": False}
#: Features whose combination identifies the kernel a layer runs. A layer whose kernel no
#: training layer ran gets the device trend (runtime: the trend's floor as fixed cost; power:
#: the class's energy per FLOP and per byte at the trend's runtime) instead of trees that
#: only know other kernels. Pooling only: its cost is the kernel's, not the work's. On the
#: bundled H200 data PyTorch's channels-last max pooling costs ~0.018 ms at any size
#: while average pooling runs near the launch floor, so trees that never saw a windowed
#: average pool gave DenseNet's 2x2 transition pools a max pool's cost (0.017 ms against
#: ~0.0035 ms measured outside the repository: "5x too slow"); the trend gives 0.0047 ms.
#: Not convolutions: held-out families' new kernels (depthwise 3x3 without MobileNets,
#: grouped without ResNeXts) are better predicted by the trees' neighbours (leave-one-
#: family-out runtime RMSPE 27.7 % with the trees, 30.2 % with the trend).
KERNEL_FEATURES: dict[str, tuple[str, ...]] = {
    "convolutional": (),
    "pooling": ("pool_max", "pool_avg", "pool_global", "pool_adaptive"),
    "dense": (),
}
_PER_ITEM_INTENSITY = ("activation_intensity", "intensity_per_item")
#: Free shape features of the power residual trees (``trend="throughput"``). Convolutions
#: carry both channel alignments: the kernel a library picks draws its own power (MobileNet-v3's
#: 672-channel 3x3 depthwise draws 126 W above idle, v2's 576-channel one 66 W); grouped-CV
#: total power 6.7 -> 6.2 % (three seeds), leave-one-CNN-out 4.2 -> 4.1 %, leave-one-family-out
#: 11.3 -> 11.0 %. Not dense: its shape-trend Lasso extrapolated ConvNeXt's MLPs to 38 %.
POWER_SHAPE: dict[str, tuple[str, ...]] = {
    "convolutional": (
        "flops_per_item",
        "input_bytes_per_item",
        "output_bytes_per_item",
        "weight_bytes",
        *_PER_ITEM_INTENSITY,
        "groups",
        "kernel_0",
        "stride_0",
        "input_size_1",
        "output_size_0",
        "rows_per_item",
        "in_alignment",
        "out_alignment",
    ),
    "pooling": (
        "flops_per_item",
        "input_bytes_per_item",
        "output_bytes_per_item",
        *_PER_ITEM_INTENSITY,
        "kernel_0",
        "stride_0",
        "input_size_0",
        "input_size_1",
        "output_size_1",
        "pool_max",
        "pool_global",
    ),
    "dense": (
        "flops_per_item",
        "input_bytes_per_item",
        "output_bytes_per_item",
        "weight_bytes",
        *_PER_ITEM_INTENSITY,
        "gemm_k",
        "gemm_n",
    ),
}
#: Features of the ``trend="shape"`` power model (the current candidate's, per item).
POWER_SHAPE_TREND: dict[str, tuple[str, ...]] = {
    "convolutional": (
        "flops_per_item",
        "input_bytes_per_item",
        "output_bytes_per_item",
        "weight_bytes",
        "intensity_per_item",
        "groups",
        "kernel_0",
        "stride_0",
        "input_size_1",
        "output_size_0",
        "rows_per_item",
        "in_alignment",
        "out_alignment",
    ),
    "pooling": (
        "flops_per_item",
        "input_bytes_per_item",
        "output_bytes_per_item",
        "kernel_0",
        "stride_0",
        "input_size_0",
        "input_size_1",
        "output_size_1",
    ),
    "dense": (
        "flops_per_item",
        "gemm_k",
        "gemm_n",
        "weight_bytes",
        "input_bytes_per_item",
        "output_bytes_per_item",
        "intensity_per_item",
    ),
}
TREES = ("extra_trees", "hist_gradient_boosting")
POWER_TRENDS = ("throughput", "shape", "blend")


def _check_finite(matrix: np.ndarray, frame: pd.DataFrame, columns: tuple[str, ...], what: str):
    """``ValueError`` naming the first layer and column without a usable value."""
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        name = frame["layer_name"].iloc[row] if "layer_name" in frame.columns else f"#{row}"
        model = f"{frame['model'].iloc[row]}/" if "model" in frame.columns else ""
        raise ValueError(
            f"{what}: {int(bad.any(axis=1).sum())} row(s) lack a feature value, e.g. layer "
            f"'{model}{name}' column '{columns[col]}' = {frame[columns[col]].iloc[row]!r}"
        )


def _kernel_list(given: tuple[str, ...] | None, layer_class: str) -> tuple[str, ...]:
    """The kernel features: ``given``, else the class's :data:`KERNEL_FEATURES` (none for a
    class without defaults)."""
    return tuple(given if given is not None else KERNEL_FEATURES.get(layer_class, ()))


def _trees(
    kind: str,
    monotonic_cst: list[int],
    *,
    random_state: int,
    n_estimators: int,
    max_features: float,
    min_samples_leaf: int,
    max_iter: int,
    learning_rate: float,
) -> RegressorMixin:
    """A monotone tree ensemble (single-threaded: the machines are shared)."""
    if kind == "extra_trees":
        return ExtraTreesRegressor(
            n_estimators=n_estimators,
            max_features=max_features,
            min_samples_leaf=min_samples_leaf,
            monotonic_cst=monotonic_cst,
            random_state=random_state,
            n_jobs=1,
        )
    if kind == "hist_gradient_boosting":
        return HistGradientBoostingRegressor(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=15,
            min_samples_leaf=max(min_samples_leaf, 3),
            l2_regularization=0.5,
            monotonic_cst=monotonic_cst,
            random_state=random_state,
        )
    raise ValueError(f"trees '{kind}' is not one of {TREES}")


def _tree_settings(estimator: BaseEstimator) -> dict[str, Any]:
    """The tree settings of an estimator's parameters."""
    return {
        name: getattr(estimator, name)
        for name in (
            "random_state",
            "n_estimators",
            "max_features",
            "min_samples_leaf",
            "max_iter",
            "learning_rate",
        )
    }


def _constants(
    given: dict[str, float] | None, frame: pd.DataFrame, runtime: np.ndarray | None, context: str
) -> dict[str, float]:
    """The device constants the estimator uses: ``given``, else fitted on the training rows
    (their runtime: the target of a runtime model, the ``runtime`` column otherwise)."""
    if given is not None:
        missing = [k for k in DEVICE_CONSTANT_KEYS if k not in given]
        if missing:
            raise KeyError(f"{context}: device_constants lack {missing}")
        return {k: float(given[k]) for k in DEVICE_CONSTANT_KEYS}
    if runtime is None:
        if "runtime" not in frame.columns:
            raise KeyError(
                f"{context}: pass device_constants (fit_device_constants on the training "
                "tables) or fit on a table with a 'runtime' column"
            )
        runtime = frame["runtime"].to_numpy(dtype="float64")
    fitted = fit_device_constants(frame.assign(runtime=runtime))
    return {k: float(fitted[k]) for k in DEVICE_CONSTANT_KEYS}


class FixedCostRuntimeRegressor(RegressorMixin, BaseEstimator):
    """Runtime (ms) = learned fixed cost of the shape + the device's marginal cost of the work.

    See the module docstring. ``monotone_features`` / ``shape_features`` default to the
    ``layer_class``'s lists (:data:`RUNTIME_MONOTONE`, :data:`RUNTIME_SHAPE`); they must not
    depend on the batch size. ``device_constants``: the result of ``fit_device_constants`` on
    the training tables of all classes (``None``: fitted on this estimator's rows).
    ``extrapolation_decay``: per unit of ``log`` below the smallest trained per-item work, the
    fixed cost above the launch floor shrinks by ``exp(-decay)``.
    """

    def __init__(
        self,
        layer_class: str = "convolutional",
        *,
        monotone_features: tuple[str, ...] | None = None,
        shape_features: tuple[str, ...] | None = None,
        device_constants: dict[str, float] | None = None,
        trees: str = "extra_trees",
        n_estimators: int = 200,
        max_features: float = 1.0,
        min_samples_leaf: int = 1,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        extrapolation_decay: float = 1.0,
        constrain_size: bool | None = None,
        kernel_features: tuple[str, ...] | None = None,
        random_state: int = 0,
    ) -> None:
        self.layer_class = layer_class
        self.constrain_size = constrain_size
        self.kernel_features = kernel_features
        self.monotone_features = monotone_features
        self.shape_features = shape_features
        self.device_constants = device_constants
        self.trees = trees
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.extrapolation_decay = extrapolation_decay
        self.random_state = random_state

    def _feature_lists(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self.layer_class not in RUNTIME_MONOTONE and (
            self.monotone_features is None or self.shape_features is None
        ):
            raise ValueError(
                f"layer_class '{self.layer_class}' has no default features; expected one of "
                f"{sorted(RUNTIME_MONOTONE)} or explicit monotone_features and shape_features"
            )
        monotone = self.monotone_features or RUNTIME_MONOTONE[self.layer_class]
        shape = self.shape_features or RUNTIME_SHAPE[self.layer_class]
        return tuple(monotone), tuple(shape)

    def _constrained(self) -> bool:
        if self.constrain_size is not None:
            return bool(self.constrain_size)
        return RUNTIME_CONSTRAIN_SIZE.get(self.layer_class, True)

    def fit(self, X: pd.DataFrame, y: Any) -> FixedCostRuntimeRegressor:  # noqa: N803
        monotone, shape = self._feature_lists()
        kernel = _kernel_list(self.kernel_features, self.layer_class)
        context = f"FixedCostRuntimeRegressor({self.layer_class}).fit"
        frame = _physics_frame(X, (*monotone, *shape, *kernel, "flops", "bytes_total"), context)
        runtime = np.asarray(y, dtype="float64")
        if runtime.shape != (len(frame),) or not np.all(np.isfinite(runtime) & (runtime > 0)):
            raise ValueError(f"{context}: y must be {len(frame)} positive finite runtimes")
        constants = _constants(self.device_constants, frame, runtime, context)
        work, _ = self._work(frame, constants)
        floor = constants["launch_floor_ms"]
        # Layers the work term over-explains keep the launch floor as their fixed cost.
        log_fixed = np.log(np.maximum(runtime - work, floor))
        features = np.hstack([_matrix(frame, monotone), _matrix(frame, shape)])
        _check_finite(features, frame, (*monotone, *shape), context)
        self.trees_ = _trees(
            self.trees,
            [int(self._constrained())] * len(monotone) + [0] * len(shape),
            **_tree_settings(self),
        ).fit(features, log_fixed)
        self.device_constants_ = constants
        self.monotone_features_ = monotone
        self.shape_features_ = shape
        self.log_fixed_range_ = np.array([log_fixed.min(), log_fixed.max()])
        self.monotone_min_ = features[:, : len(monotone)].min(axis=0)
        self.kernel_features_ = kernel
        self.kernels_seen_ = kernel_signatures(frame, kernel) if kernel else None
        self.n_features_in_ = len(monotone) + len(shape)
        return self

    @staticmethod
    def _work(frame: pd.DataFrame, constants: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        return device_trend(
            frame["flops"].to_numpy(dtype="float64"),
            frame["bytes_total"].to_numpy(dtype="float64"),
            constants,
        )

    def predictor(self, compiled: bool = False) -> RuntimePredictor:
        """The prediction formula over the fitted state (:mod:`~power_modelling.core.compiled`);
        ``compiled``: with the trees as NumPy arrays (predicts without scikit-learn)."""
        return RuntimePredictor(
            monotone_features=self.monotone_features_,
            shape_features=self.shape_features_,
            device_constants=self.device_constants_,
            log_fixed_range=self.log_fixed_range_,
            monotone_min=self.monotone_min_,
            extrapolation_decay=self.extrapolation_decay,
            trees=TreeEnsemble.from_sklearn(self.trees_) if compiled else self.trees_,
            # getattr: estimators fitted before the kernel fallback predict as they did
            kernel_features=getattr(self, "kernel_features_", ()),
            kernels_seen=getattr(self, "kernels_seen_", None),
        )

    def fixed_cost(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """The fixed-cost part of the prediction (ms), NaN where a feature is missing."""
        return self.predictor().fixed_cost(X)

    def kernel_fallback(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Rows predicted from the device trend (a kernel never trained on)."""
        return self.predictor().kernel_fallback(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return self.predictor().predict(X)


class ThroughputPowerRegressor(RegressorMixin, BaseEstimator):
    """Dynamic power above idle (W), non-decreasing in work at a fixed shape.

    See the module docstring for ``trend``. ``shape_features`` default to the class's
    :data:`POWER_SHAPE` (``"throughput"``) or :data:`POWER_SHAPE_TREND` (``"shape"``); they
    must not depend on the batch size. Targets below ``power_floor`` W are clipped to it (log
    space; the dynamic power of tiny layers is within sensor noise of 0).
    """

    def __init__(
        self,
        layer_class: str = "convolutional",
        *,
        trend: str = "blend",
        shape_features: tuple[str, ...] | None = None,
        device_constants: dict[str, float] | None = None,
        trees: str = "extra_trees",
        n_estimators: int = 200,
        max_features: float = 0.5,
        min_samples_leaf: int = 1,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        power_floor: float = 0.5,
        kernel_features: tuple[str, ...] | None = None,
        random_state: int = 0,
    ) -> None:
        self.layer_class = layer_class
        self.kernel_features = kernel_features
        self.trend = trend
        self.shape_features = shape_features
        self.device_constants = device_constants
        self.trees = trees
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.power_floor = power_floor
        self.random_state = random_state

    def _shape_list(self) -> tuple[str, ...]:
        defaults = POWER_SHAPE if self.trend == "throughput" else POWER_SHAPE_TREND
        if self.trend not in POWER_TRENDS:
            raise ValueError(f"trend '{self.trend}' is not one of {POWER_TRENDS}")
        if self.shape_features is None and self.layer_class not in defaults:
            raise ValueError(
                f"layer_class '{self.layer_class}' has no default features; expected one of "
                f"{sorted(defaults)} or explicit shape_features"
            )
        return tuple(self.shape_features or defaults[self.layer_class])

    def fit(self, X: pd.DataFrame, y: Any) -> ThroughputPowerRegressor:  # noqa: N803
        if self.trend == "blend":
            # geometric mean of the two: both are non-decreasing in work, so is their mean
            self.members_ = tuple(
                ThroughputPowerRegressor(
                    **{**self.get_params(), "trend": trend, "kernel_features": ()}
                ).fit(X, y)
                for trend in ("throughput", "shape")
            )
            self.device_constants_ = self.members_[0].device_constants_
            self.n_features_in_ = self.members_[0].n_features_in_
            self._fit_kernels(X, y)
            return self
        shape = self._shape_list()
        context = f"ThroughputPowerRegressor({self.layer_class}).fit"
        frame = _physics_frame(X, (*shape, "flops", "bytes_total", "batch_size"), context)
        power = np.asarray(y, dtype="float64")
        if power.shape != (len(frame),) or not np.all(np.isfinite(power)):
            raise ValueError(f"{context}: y must be {len(frame)} finite powers (W above idle)")
        self.device_constants_ = _constants(self.device_constants, frame, None, context)
        log_power = np.log(np.maximum(power, self.power_floor))
        shape_matrix = _matrix(frame, shape)
        _check_finite(shape_matrix, frame, shape, context)
        rates = work_rates(frame, self.device_constants_)
        if self.trend == "throughput":
            # power rises with the utilisation, slope >= 0; log u <= 0 bounds it above (the
            # trend saturates) and it falls towards 0 W for layers far smaller than trained
            design = np.column_stack([rates[:, 0], np.ones(len(frame))])
            self.coef_ = lsq_linear(design, log_power, bounds=([0.0, -np.inf], [np.inf, np.inf])).x
            residual = log_power - design @ self.coef_
            features = np.hstack([rates, shape_matrix])
            constraint = [1, 1, 1] + [0] * len(shape)
        else:
            # inputs capped at 10x the trained maximum at prediction: a linear trend in log
            # features would grow without bound (power saturates)
            self.shape_max_ = shape_matrix.max(axis=0)
            self.scaler_ = StandardScaler().fit(shape_matrix)
            self.lasso_ = LassoCV(cv=5, alphas=50, max_iter=10000, tol=1e-6).fit(
                self.scaler_.transform(shape_matrix), log_power
            )
            trend = self.lasso_.predict(self.scaler_.transform(shape_matrix))
            # and the trend itself at most its largest trained value (power saturates), at
            # least 10x below its smallest: collinear features (FLOPs, weights, bytes of a
            # GEMM) get large opposite coefficients whose sum extrapolates anywhere
            self.trend_range_ = np.array([trend.min(), trend.max()])
            residual = log_power - trend
            features = shape_matrix
            constraint = [0] * len(shape)
        self.trees_ = _trees(
            self.trees,
            constraint,
            **_tree_settings(self),
        ).fit(features, residual)
        self.shape_features_ = shape
        self.residual_range_ = np.array([residual.min(), residual.max()])
        self.n_features_in_ = features.shape[1]
        self._fit_kernels(X, y)
        return self

    def _fit_kernels(self, X: pd.DataFrame, y: Any) -> None:  # noqa: N803
        """The kernels trained on and the class's energy per FLOP and per byte (non-negative
        least squares of power on ``flops / runtime`` and ``bytes / runtime`` over the rows
        with a measured ``runtime``); no fallback without kernel features or runtimes."""
        kernel = _kernel_list(self.kernel_features, self.layer_class)
        self.kernel_features_, self.kernels_seen_, self.energy_ = kernel, None, None
        if not kernel or "runtime" not in X.columns:
            return
        context = f"ThroughputPowerRegressor({self.layer_class}).fit"
        frame = _physics_frame(X, (*kernel, "flops", "bytes_total", "runtime"), context)
        runtime = pd.to_numeric(frame["runtime"], errors="coerce").to_numpy(dtype="float64")
        power = np.asarray(y, dtype="float64")
        usable = np.isfinite(runtime) & (runtime > 0) & np.isfinite(power)
        if usable.sum() < 2:
            return
        rates = np.column_stack(
            [
                frame["flops"].to_numpy(dtype="float64") / runtime,
                frame["bytes_total"].to_numpy(dtype="float64") / runtime,
            ]
        )[usable]
        self.energy_ = lsq_linear(rates, power[usable], bounds=(0.0, np.inf)).x
        self.kernels_seen_ = kernel_signatures(frame, kernel)

    def predictor(self, compiled: bool = False) -> PowerPredictor:
        """The prediction formula over the fitted state (:mod:`~power_modelling.core.compiled`);
        ``compiled``: with the trees as NumPy arrays (predicts without scikit-learn)."""
        # getattr: estimators fitted before the kernel fallback predict as they did
        kernels = {
            "kernel_features": getattr(self, "kernel_features_", ()),
            "kernels_seen": getattr(self, "kernels_seen_", None),
            "energy": getattr(self, "energy_", None),
        }
        if self.trend == "blend":
            members = tuple(member.predictor(compiled) for member in self.members_)
            return PowerPredictor(
                trend="blend",
                members=members,
                device_constants=self.device_constants_,
                **kernels,
            )
        shape = {}
        if self.trend == "shape":
            shape = {
                "trend_range": getattr(self, "trend_range_", None),  # None: fitted before it
                "shape_max": self.shape_max_,
                "scaler_mean": self.scaler_.mean_,
                "scaler_scale": self.scaler_.scale_,
                "lasso_coef": self.lasso_.coef_,
                "lasso_intercept": float(self.lasso_.intercept_),
            }
        return PowerPredictor(
            trend=self.trend,
            shape_features=self.shape_features_,
            device_constants=self.device_constants_,
            trees=TreeEnsemble.from_sklearn(self.trees_) if compiled else self.trees_,
            residual_range=self.residual_range_,
            coef=getattr(self, "coef_", None),
            **shape,
            **kernels,
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return self.predictor().predict(X)
