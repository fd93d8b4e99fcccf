"""How far one validation agrees, against issue 21's Done-when: within 5 % on request counts by
operation, within 30 % on view p50 and p99.

`agreement(rows)` reduces `validation.validate`'s rows to what the README reports per run: the
request count furthest from its measure (named), the view percentiles' ratios, and which of
those miss their tolerance. An idle run has no view latency (nobody sends): its percentiles are
None and judged on nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from semichat.model.validation import Row

COUNT_TOLERANCE = 0.05
VIEW_TOLERANCE = 0.30
# Request counts are the rows named after a service's operation (`validate` prefixes them).
SERVICES = ("dynamodb:", "sqs:")
VIEW_ROWS = {50: "user_view p50 (ms)", 99: "user_view p99 (ms)"}


@dataclass(frozen=True)
class Agreement:
    worst_op: str
    # model / measured; inf when the model made requests the run never did.
    worst_ratio: float
    view_p50: float | None
    view_p99: float | None

    def misses(self) -> list[str]:
        """The figures outside their tolerance, named as the README names them."""
        out = []
        if _off(self.worst_ratio) > COUNT_TOLERANCE:
            out.append(self.worst_op)
        for q, ratio in ((50, self.view_p50), (99, self.view_p99)):
            if ratio is not None and _off(ratio) > VIEW_TOLERANCE:
                out.append(f"view p{q}")
        return out


def _off(ratio: float) -> float:
    # Rounded so that a ratio of exactly 1.05 is within 5 % (in floats, 21 / 20 - 1 > 0.05).
    return round(abs(ratio - 1.0), 9)


def _count_ratio(row: Row) -> float:
    if row.measured:
        return row.model / row.measured
    return math.inf if row.model else 1.0


def _view_ratio(row: Row | None) -> float | None:
    if row is None or row.ratio is None or math.isnan(row.ratio):
        return None
    return row.ratio


def agreement(rows: Sequence[Row]) -> Agreement:
    counts = [r for r in rows if r.figure.startswith(SERVICES)]
    if not counts:
        raise ValueError("no request counts by operation among the rows")
    worst = max(counts, key=lambda r: _off(_count_ratio(r)))
    by_name = {r.figure: r for r in rows}
    return Agreement(
        worst_op=worst.figure.split(":", 1)[1],
        worst_ratio=_count_ratio(worst),
        view_p50=_view_ratio(by_name.get(VIEW_ROWS[50])),
        view_p99=_view_ratio(by_name.get(VIEW_ROWS[99])),
    )
