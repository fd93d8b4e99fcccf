"""Locust scenarios, one file each, shipped inside the package so an installed semichat runs them.

A scenario file is a locustfile: its user class shows the behaviour, and its module constant
`KNOBS` the settings it changes from `LoadConfig`'s defaults (flags of `semichat simulate` win).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).resolve().parent


def scenario_names() -> list[str]:
    return sorted(p.stem for p in DIRECTORY.glob("*.py") if not p.stem.startswith("_"))


def scenario_file(name: str) -> Path:
    path = DIRECTORY / f"{name}.py"
    if not path.is_file():
        raise ValueError(f"unknown scenario {name!r}; choose one of {scenario_names()}")
    return path


def scenario_knobs(name: str) -> dict[str, Any]:
    """The scenario's `KNOBS`, read from its source: importing a locustfile imports Locust,
    which monkey-patches the whole process with gevent."""
    tree = ast.parse(scenario_file(name).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "KNOBS" for t in targets):
                assert node.value is not None
                return dict(ast.literal_eval(node.value))
    return {}
