"""A fitted scikit-learn model as a skops file: loading it never executes code.

Pickle (and joblib) files run whatever code they carry when they are loaded, so a model file
that came from somewhere else (a shared folder, DagsHub, a colleague) could do anything. A
skops file is data: ``skops.io`` rebuilds only the types it is told to trust. This dataset
trusts scikit-learn and NumPy (what skops itself calls safe) plus the ``trusted_types`` named
in the catalog, and refuses a file that needs anything else, naming the types.

A physics estimator's file also holds its NumPy predictor (:mod:`power_modelling.core.compiled`:
a JSON header and ``.npy`` arrays, members under ``power_modelling/`` of the same zip file,
which skops ignores). Loading returns that predictor (``predictor: true``, the default): no
scikit-learn, SciPy or skops import and an eighth of the bytes, the same predictions. One
file, written in one atomic rename, so the two can never disagree; a file without one (any
other estimator, or written before) loads the scikit-learn estimator as skops. ``predictor:
false`` always loads the scikit-learn estimator (to inspect or refit it).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from power_modelling.core.compiled import NotCompilable, from_state, to_state

logger = logging.getLogger(__name__)
#: Zip members of the NumPy predictor inside a skops file.
PREDICTOR_HEADER = "power_modelling/predictor.json"
PREDICTOR_ARRAYS = "power_modelling/arrays/"


def skops_io() -> ModuleType:
    """``skops.io``, imported without its walk over every scikit-learn module.

    Importing ``skops.io`` lists scikit-learn's estimators (its default trusted types) with
    ``sklearn.utils.all_estimators()``, which imports every scikit-learn module (and pytest,
    and Dask when installed): about a third of a one-network ``kedro run --pipelines
    prediction`` before the first model is read. For the scikit-learn version recorded in
    ``_sklearn_estimators`` that list is known, and the import gets it from there: skops
    trusts exactly the same types. Any other version takes skops' own walk.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn  # noqa: PLC0415
    import sklearn.utils  # noqa: PLC0415

    from power_modelling.datasets import _sklearn_estimators as recorded  # noqa: PLC0415

    if sklearn.__version__ != recorded.SKLEARN_VERSION:
        return importlib.import_module("skops.io")
    listed = [_named_type(name) for name in recorded.ESTIMATOR_TYPES]
    walk = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda *args, **kwargs: listed
    try:
        return importlib.import_module("skops.io")
    finally:
        sklearn.utils.all_estimators = walk


def _named_type(qualified: str) -> tuple[str, type]:
    """``(name, class)`` as ``all_estimators`` gives them; the class is a stand-in whose module
    and name are those of the estimator (all skops reads of it)."""
    module, name = qualified.rsplit(".", 1)
    return name, type(name, (), {"__module__": module})


class SkopsModelDataset(AbstractDataset[Any, Any]):
    """``filepath``: the ``.skops`` file; ``trusted_types``: fully qualified names of the
    project's own types a model may contain (beyond skops' safe defaults); ``predictor``:
    load the NumPy predictor the file holds, if any (else the scikit-learn estimator)."""

    def __init__(
        self,
        filepath: str,
        trusted_types: list[str] | None = None,
        predictor: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._trusted = list(trusted_types or [])
        self._predictor = bool(predictor)
        self.metadata = metadata

    def load(self) -> Any:
        if self._predictor and self._filepath.is_file():
            predictor = self._load_predictor()
            if predictor is not None:
                return predictor
        return self._load_estimator()

    def _load_predictor(self) -> Any:
        """The NumPy predictor in the file; ``None`` when it holds none (or an older layout)."""
        try:
            with zipfile.ZipFile(self._filepath) as archive:
                names = archive.namelist()
                if PREDICTOR_HEADER not in names:
                    return None
                header = json.loads(archive.read(PREDICTOR_HEADER))
                arrays = {}
                for name in names:
                    if name.startswith(PREDICTOR_ARRAYS) and name.endswith(".npy"):
                        with archive.open(name) as member:
                            key = name[len(PREDICTOR_ARRAYS) : -len(".npy")]
                            arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            return from_state(header, arrays)
        except zipfile.BadZipFile:
            return None  # the skops reader names the problem
        except (ValueError, KeyError) as exc:
            logger.info(
                "%s: its NumPy predictor is unreadable (%s); loading the estimator",
                self._filepath,
                exc,
            )
            return None

    def _load_estimator(self) -> Any:
        sio = skops_io()
        from skops.io.exceptions import UntrustedTypesFoundException  # noqa: PLC0415

        if not self._filepath.is_file():
            raise DatasetError(
                f"{self._filepath}: no fitted model here; train with `kedro run` (or "
                "`kedro run --pipelines modelling`) or choose other models (docs/prediction.md)"
            )
        try:
            # one pass over the file: skops audits every type against its safe defaults plus
            # ours before it constructs anything (listing the untrusted types first would
            # parse the whole file twice: a third of a prediction run's start-up)
            return sio.load(self._filepath, trusted=self._trusted)
        except (zipfile.BadZipFile, ValueError, KeyError) as exc:
            raise DatasetError(
                f"{self._filepath}: not a skops model file ({exc}); pickle/joblib model files "
                "are refused because loading them can execute code"
            ) from exc
        except UntrustedTypesFoundException:
            refused = sorted(set(sio.get_untrusted_types(file=self._filepath)) - set(self._trusted))
            raise DatasetError(
                f"{self._filepath}: refusing to load a model that needs types outside the "
                f"trusted list: {refused}. If you trust this file, add them to trusted_types "
                "of its catalog entry."
            ) from None

    def save(self, data: Any) -> None:
        sio = skops_io()

        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        # temporary file beside the target, then an atomic rename: a reader never sees half
        # a model, and a failed write leaves the previous model in place
        handle, temporary = tempfile.mkstemp(
            dir=self._filepath.parent, prefix=f".{self._filepath.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(sio.dumps(data))
            self._append_predictor(data, Path(temporary))
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide models from other users
            os.replace(temporary, self._filepath)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @staticmethod
    def _append_predictor(data: Any, path: Path) -> None:
        """Add the estimator's NumPy predictor to the skops zip at ``path`` (none for
        estimators without one)."""
        compile_predictor = getattr(data, "predictor", None)
        if not callable(compile_predictor):
            return
        try:
            header, arrays = to_state(compile_predictor(compiled=True))
        except NotCompilable as exc:
            logger.debug("%s: no NumPy predictor (%s)", path, exc)
            return
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(PREDICTOR_HEADER, json.dumps(header))
            for key, array in arrays.items():
                with archive.open(f"{PREDICTOR_ARRAYS}{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(
                        member, np.ascontiguousarray(array), allow_pickle=False
                    )

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "trusted_types": self._trusted,
            "predictor": self._predictor,
        }
