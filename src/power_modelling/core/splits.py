"""Which CNNs are held out for testing: named, comma-separated, or chosen automatically.

``auto`` holds out about 15 % of the CNNs, spread over architecture families (the name's
leading letters: ``resnet18`` and ``resnet50`` are both ``resnet``): families are visited
largest first and one CNN is taken from each in turn, the one in the middle of the family's
sorted names, so the choice is deterministic and needs no seed. A dataset may also name its
own hold-out (``test_models_by_dataset``), as the bundled one does to match the published
study; a copy holding only some of those CNNs holds out the ones it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

AUTO = "auto"
AUTO_SHARE = 0.15
_FAMILY = re.compile(r"^[A-Za-z]+")


def family(name: str) -> str:
    """Architecture family of a CNN name: its leading letters (``vgg16`` → ``vgg``)."""
    match = _FAMILY.match(name)
    return match.group(0).lower() if match else name.lower()


def auto_test_models(available: Iterable[str], share: float = AUTO_SHARE) -> list[str]:
    """About ``share`` of ``available`` (at least 1, and always leaving 2 to train on), spread
    over architecture families; deterministic."""
    names = sorted(set(available))
    n_test = min(max(1, round(share * len(names))), len(names) - 2)
    if n_test < 1:
        return []
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(family(name), []).append(name)
    # largest families first (ties by name), then round-robin, middle member first
    order = sorted(families, key=lambda f: (-len(families[f]), f))
    queues = {f: _middle_out(families[f]) for f in order}
    chosen: list[str] = []
    while len(chosen) < n_test:
        for name in order:
            if queues[name] and len(chosen) < n_test:
                chosen.append(queues[name].pop(0))
    return sorted(chosen)


def _middle_out(members: list[str]) -> list[str]:
    """``members`` from the middle outwards: a typical member first, not the smallest."""
    middle = (len(members) - 1) // 2
    order = sorted(range(len(members)), key=lambda i: (abs(i - middle), i))
    return [members[i] for i in order]


def parse_names(value: Any) -> list[str] | str:
    """A list, a comma-separated string (what ``--params`` can pass) or ``auto``."""
    if isinstance(value, str):
        if value.strip().lower() == AUTO:
            return AUTO
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(item).strip() for item in value if str(item).strip()]
    raise ValueError(
        f"expected a list of CNN names, a comma-separated string or 'auto', got {value!r}"
    )


def resolve_test_models(
    test_models: Any,
    available: Iterable[str],
    raw_dataset: str,
    by_dataset: Mapping[str, Any] | None = None,
) -> tuple[list[str], str]:
    """The held-out CNNs and how they were chosen (``parameter``, ``dataset``, ``auto``).

    Raises ``ValueError`` naming the parameter, the names that do not exist, the ones that
    do and how to fix it; or when no CNN would be left to train on.
    """
    available = sorted(set(available))
    names = parse_names(test_models)
    how = "parameter"
    if names == AUTO:
        # a dataset's declared hold-out, as far as this copy of it holds those CNNs
        declared = parse_names((by_dataset or {}).get(raw_dataset) or [])
        present = [] if declared == AUTO else [n for n in declared if n in available]
        if not present:
            return auto_test_models(available), AUTO
        names, how = present, "dataset"
    missing = [name for name in names if name not in available]
    if missing:
        parameter = "feature_engineering.test_models"
        raise ValueError(
            f"{parameter} names CNN(s) {missing} that are not in data/01_raw/{raw_dataset} "
            f"(its CNNs: {', '.join(available) or 'none'}). Fix: --params "
            f'"feature_engineering.test_models={",".join(available[:2]) or "<names>"}" '
            "(comma-separated), or feature_engineering.test_models=auto to hold out ~15 % "
            "spread over architecture families"
        )
    check_training_cnns(len(available) - len(set(names)), len(available), raw_dataset, 1)
    return sorted(set(names)), how


def check_training_cnns(n_train: int, n_total: int, raw_dataset: str, needed: int) -> None:
    """At least ``needed`` CNNs must be left to train on (2 for grouped cross-validation)."""
    if n_train < needed:
        raise ValueError(
            f"feature_engineering.test_models holds out {n_total - n_train} of the {n_total} "
            f"CNN(s) of data/01_raw/{raw_dataset}: at least {needed} must be left to train on"
            + (" (grouped cross-validation)" if needed > 1 else "")
            + "; hold out fewer, or add CNNs to the dataset"
        )
