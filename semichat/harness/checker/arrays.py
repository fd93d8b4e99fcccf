"""Array types and the few numpy idioms every step of the checker shares."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]


def as_strings(values: pd.Series) -> ObjectArray:
    """Strings as an object array, missing values as None, so codes can be shared across tables."""
    return values.astype(object).where(values.notna(), None).to_numpy()


def run_starts(sorted_codes: IntArray) -> BoolArray:
    """True where a run of equal codes begins in a sorted array."""
    starts = np.ones(len(sorted_codes), dtype=bool)
    starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
    return starts


def find(sorted_keys: IntArray, queries: IntArray) -> tuple[BoolArray, IntArray]:
    """Whether each query is among sorted unique keys, and where (0 when it is not)."""
    if not len(sorted_keys):
        return np.zeros(len(queries), dtype=bool), np.zeros(len(queries), dtype=np.int64)
    pos = np.searchsorted(sorted_keys, queries).clip(max=len(sorted_keys) - 1)
    found = sorted_keys[pos] == queries
    return found, np.where(found, pos, 0)


def earliest_per_code(codes: IntArray, t: FloatArray) -> IntArray:
    """Positions of each code's earliest row by ``t`` (ties: the earlier row), one per code."""
    order = np.lexsort((np.arange(len(codes)), t, codes))
    return order[run_starts(codes[order])]
