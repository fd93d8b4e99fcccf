"""The property tests' profiles carry no deadline: an example slowed by the machine's load
passes (tests/hypothesis_profiles.py)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st


def test_the_loaded_profile_has_no_deadline() -> None:
    assert settings().deadline is None


@settings(max_examples=2)
@given(st.integers())
def test_an_example_slower_than_hypothesiss_default_deadline_passes(n: int) -> None:
    time.sleep(0.3)  # a scheduling pause on a loaded machine; the default deadline is 200 ms
