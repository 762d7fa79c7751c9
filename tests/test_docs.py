"""The documentation agrees with the project: configuration keys, links, pipeline names.

``docs/configuration.md`` lists configuration keys in tables whose first column is the key in
backticks. Under the ``## Parameters`` heading they are the keys of ``conf/base/parameters*.yml``
as loaded (dotted), under ``## MLflow`` those of ``conf/base/mlflow.yml``. A key may use
placeholders (``<layer>``) defined in a table row `` `<layer>` | `a`, `b`, ... ``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project

from tests.helpers import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
MARKDOWN = [PROJECT_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: ``## heading`` of configuration.md → configuration key of the loader.
CONFIG_SECTIONS = {"## Parameters": "parameters", "## MLflow": "mlflow"}

TABLE_KEY = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)$")
PLACEHOLDER = re.compile(r"(<\w+>)")
FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1\s*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
MENTIONED_MARKDOWN = re.compile(r"`([\w./-]+\.md)`")
PIPELINES_OPTION = re.compile(r"--pipelines?[ =]([A-Za-z_]\w*(?:,[A-Za-z_]\w*)*)")


# ----------------------------------------------------------------------------- helpers
@cache
def _config(key: str) -> dict[str, Any]:
    """``key`` of the configuration loaded from ``conf/base`` alone (no ``conf/local``)."""
    bootstrap_project(PROJECT_ROOT)
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        **{**settings.CONFIG_LOADER_ARGS, "default_run_env": "base"},
    )
    return loader[key]


def _keys(tree: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str]]:
    """(every dotted key, the leaf keys); an empty mapping is a leaf."""
    every, leaves = set(), set()
    for name, value in tree.items():
        key = f"{prefix}{name}"
        every.add(key)
        if isinstance(value, dict) and value:
            below, below_leaves = _keys(value, f"{key}.")
            every |= below
            leaves |= below_leaves
        else:
            leaves.add(key)
    return every, leaves


def _section(text: str, heading: str) -> str:
    """The lines from ``heading`` (a ``## `` line starting so) to the next ``## `` heading."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    assert len(starts) == 1, f"configuration.md needs exactly one '{heading}' heading"
    section = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("## "):
            break
        section.append(line)
    return "\n".join(section)


def _table_keys(text: str) -> list[tuple[str, str]]:
    """(key, rest of the row) of every table row whose first cell is one backticked key."""
    return [
        (match.group(1).strip(), match.group(2))
        for line in text.splitlines()
        if (match := TABLE_KEY.match(line.strip()))
    ]


def _placeholders(text: str) -> dict[str, list[str]]:
    """``{"<layer>": ["convolutional", ...]}`` from the rows defining placeholders."""
    return {
        key: re.findall(r"`([^`]+)`", rest.split("|")[0])
        for key, rest in _table_keys(text)
        if re.fullmatch(r"<\w+>", key)
    }


def _pattern(key: str, placeholders: dict[str, list[str]]) -> re.Pattern[str]:
    parts = []
    for part in PLACEHOLDER.split(key):
        if PLACEHOLDER.fullmatch(part):
            assert placeholders.get(part), f"placeholder {part} of `{key}` is not defined"
            parts.append("(?:" + "|".join(map(re.escape, placeholders[part])) + ")")
        else:
            parts.append(re.escape(part))
    return re.compile("".join(parts))


def _documented(heading: str) -> dict[str, re.Pattern[str]]:
    text = CONFIGURATION.read_text(encoding="utf-8")
    placeholders = _placeholders(text)
    keys = [key for key, _ in _table_keys(_section(text, heading)) if key not in placeholders]
    assert keys, f"no documented key under '{heading}'"
    return {key: _pattern(key, placeholders) for key in keys}


def _link_targets(markdown: str) -> list[str]:
    """Relative link targets of a markdown text, outside fenced code blocks: markdown and
    reference links (anchors and queries dropped), and backticked ``*.md`` mentions."""
    text = FENCE.sub("", markdown)
    targets = LINK.findall(text) + REFERENCE_LINK.findall(text)
    relative = [
        target.split("#", 1)[0].split("?", 1)[0]
        for target in targets
        if not re.match(r"^[a-zA-Z][\w+.-]*:", target) and not target.startswith("#")
    ]
    return [target for target in relative if target] + MENTIONED_MARKDOWN.findall(text)


def _markdown_id(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


# ----------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(("heading", "config_key"), CONFIG_SECTIONS.items())
def test_every_documented_configuration_key_exists(heading: str, config_key: str) -> None:
    every, _ = _keys(_config(config_key))
    unknown = [
        key
        for key, pattern in _documented(heading).items()
        if not any(pattern.fullmatch(existing) for existing in every)
    ]
    assert unknown == [], f"documented in docs/configuration.md but not in conf/base: {unknown}"


@pytest.mark.parametrize(("heading", "config_key"), CONFIG_SECTIONS.items())
def test_every_configuration_key_is_documented(heading: str, config_key: str) -> None:
    _, leaves = _keys(_config(config_key))
    patterns = list(_documented(heading).values())
    missing = sorted(key for key in leaves if not any(p.fullmatch(key) for p in patterns))
    assert missing == [], f"in conf/base but not in docs/configuration.md: {missing}"


def test_placeholder_patterns_match_exactly_their_values() -> None:
    pattern = _pattern("<layer>.<target>", {"<layer>": ["a", "b.c"], "<target>": ["x"]})
    assert pattern.fullmatch("b.c.x")
    assert not pattern.fullmatch("d.x")
    assert not pattern.fullmatch("a.y")


# ----------------------------------------------------------------------------- links
def test_markdown_files_are_found() -> None:
    assert CONFIGURATION in MARKDOWN
    assert {"architecture.md", "configuration.md", "extending.md"} <= {p.name for p in MARKDOWN}


@pytest.mark.parametrize("path", MARKDOWN, ids=_markdown_id)
def test_relative_links_point_at_existing_files(path: Path) -> None:
    missing = [
        target
        for target in _link_targets(path.read_text(encoding="utf-8"))
        if not (path.parent / target).exists() and not (PROJECT_ROOT / target).exists()
    ]
    assert missing == [], f"{_markdown_id(path)} links to missing files: {missing}"


def test_link_parsing() -> None:
    text = (
        'See [a](docs/a.md#x), ![i](img.png "t"), [web](https://x.org/y.md), [top](#h), '
        "`docs/b.md`.\n[ref]: ../c.md\n```bash\n[not](code.md) `d.md`\n```\n"
    )
    assert sorted(_link_targets(text)) == ["../c.md", "docs/a.md", "docs/b.md", "img.png"]


# ----------------------------------------------------------------------------- pipelines
def test_pipelines_named_in_docs_are_registered() -> None:
    bootstrap_project(PROJECT_ROOT)  # also clears a pipeline filter left by an earlier run
    from power_modelling.pipeline_registry import register_pipelines

    registered = set(register_pipelines())
    mentioned = {
        (_markdown_id(path), name)
        for path in MARKDOWN
        for names in PIPELINES_OPTION.findall(path.read_text(encoding="utf-8"))
        for name in names.split(",")
    }
    assert {name for _, name in mentioned} & {"prediction", "modelling"}, "parser found nothing"
    unknown = sorted((doc, name) for doc, name in mentioned if name not in registered)
    assert unknown == [], f"--pipelines names that are not registered: {unknown}"
