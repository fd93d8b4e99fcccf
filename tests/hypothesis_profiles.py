"""Hypothesis profiles: the full search by default, a quick one for `make test-unit`.

Property tests state their search size relative to the default profile with `examples(n)`, so
`pytest --hypothesis-profile=quick` shrinks every one of them alike.

Neither profile has a deadline. Hypothesis's own default fails an example that takes over
200 ms, a clock in the test: on a loaded 2-core machine a scheduling pause alone takes that long,
and the suite must not fail for the machine's load (tests wait on conditions, never on time).
"""

from __future__ import annotations

from hypothesis import settings

DEFAULT_EXAMPLES = 100
settings.register_profile("semichat", deadline=None)
settings.register_profile(
    "quick", parent=settings.get_profile("semichat"), max_examples=DEFAULT_EXAMPLES // 10
)
settings.load_profile("semichat")


def examples(full: int) -> int:
    """`full` examples under the default profile, scaled by the loaded profile's size."""
    return max(1, full * settings().max_examples // DEFAULT_EXAMPLES)
