"""Whether the tests run in CI: the one rule every test module and fixture asks.

CI services spell it differently (`CI=true` on most, `CI=1` on some, `yes` by hand); all mean the
same here. The Makefile applies the same rule to its own steps.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

CI_VALUES = frozenset({"1", "true", "yes"})


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when `CI` is 1, true or yes, in any case."""
    return environ.get("CI", "").strip().lower() in CI_VALUES
