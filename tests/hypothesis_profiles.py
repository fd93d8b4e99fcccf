"""Hypothesis profiles: the full search by default, a quick one for `make test-unit`.

Property tests state their search size relative to the default profile with `examples(n)`, so
`pytest --hypothesis-profile=quick` shrinks every one of them alike.
"""

from __future__ import annotations

from hypothesis import settings

DEFAULT_EXAMPLES = 100
settings.register_profile("quick", max_examples=DEFAULT_EXAMPLES // 10)


def examples(full: int) -> int:
    """`full` examples under the default profile, scaled by the loaded profile's size."""
    return max(1, full * settings().max_examples // DEFAULT_EXAMPLES)
