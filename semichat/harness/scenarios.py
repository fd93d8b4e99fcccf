"""Where the Locust scenarios are: `loadtests/` of a checkout, else the installed package's copy.

A scenario file is a locustfile: its user class shows the behaviour, and its module constant
`KNOBS` the settings it changes from `LoadConfig`'s defaults, offered as Locust arguments
(`--conversation-size`, ...; flags of `semichat simulate` map onto them). There is one copy:
`loadtests/` at the top of the repository, installed as `semichat.loadtests` (setup.py).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any


def _directory() -> Path:
    """A checkout's `loadtests/` beside the `semichat` package, else the installed copy."""
    checkout = Path(__file__).resolve().parents[2] / "loadtests"
    if (checkout / "chat.py").is_file():
        return checkout
    spec = importlib.util.find_spec("semichat.loadtests")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "semichat's scenarios are missing: neither loadtests/ nor semichat.loadtests"
        )
    return Path(next(iter(spec.submodule_search_locations)))


DIRECTORY = _directory()


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
