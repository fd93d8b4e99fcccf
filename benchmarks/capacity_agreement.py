"""The capacity model's agreement with the kept runs, printed as markdown.

    .venv/bin/python -m benchmarks.capacity_agreement            # the README's table
    .venv/bin/python -m benchmarks.capacity_agreement --repeats  # three 100-user runs each
    .venv/bin/python -m benchmarks.capacity_agreement --docs R-N  # docs/capacity.md rows

The README's table is strategy x size: chat runs from `benchmarks/results/capacity/R-N`, idle
runs from `benchmarks/results/capacity/idle/R-N`, each cell the request count furthest from its
measure (`semichat.model.agreement`) and, for chat, view p50 / p99 ratios; a figure outside
issue 21's tolerance is bold; below it, each figure that misses, in how many runs and by how
much. `--repeats`: each strategy's three 100-user chat runs (`R-100`, then `repeats/R-100-2`
and `-3`): the model's agreement with each, and the spread of what the runs measured.
`--docs` prints docs/capacity.md's rows for the named runs (paths under
`benchmarks/results/capacity/`: `R-N`, `idle/R-N`, `loaded/current-server/R-N`), in the
columns of its tables; with `--cpu-share 1` on a whole core, with `--emulators` queueing at the
emulators (`semichat model --validate --emulators`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semichat.model.agreement import SERVICES, VIEW_ROWS, Agreement, agreement
from semichat.model.overheads import CLIENT_FILE
from semichat.model.validation import Row, read_results, run_cpu_share, validate

ROOT = Path(__file__).resolve().parent / "results" / "capacity"
SIZES = (20, 50, 100)
# In docs/capacity.md's order.
STRATEGIES = ("per_user_queue", "preprovisioned", "fifo", "sharded", "instance")
REPLICATIONS = 3  # as docs/capacity.md's tables
REPEATS = 3  # 100-user runs per strategy: R-100, repeats/R-100-2, repeats/R-100-3
CHAT_COLUMNS = (
    "sends",
    "sqs:SendMessage",
    "sqs:ReceiveMessage.messages",
    "sqs:DeleteMessage",
    "sqs:DeleteMessageBatch",
    "dynamodb:TransactWriteItems",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
    "dynamodb read units",
    "dynamodb write units",
    "wire p50 (ms)",
    "wire p99 (ms)",
    "user_view p50 (ms)",
    "user_view p99 (ms)",
)


def _mark(text: str, miss: bool) -> str:
    return f"**{text}**" if miss else text


def cell(found: Agreement, chat: bool) -> str:
    misses = found.misses()
    worst = _mark(f"{found.worst_op} {found.worst_ratio:.2f}", found.worst_op in misses)
    if not chat or found.view_p50 is None or found.view_p99 is None:
        return worst
    p50 = _mark(f"{found.view_p50:.2f}", "view p50" in misses)
    p99 = _mark(f"{found.view_p99:.2f}", "view p99" in misses)
    return f"{worst}; {p50} / {p99}"


def _misses(rows: list[Row], run: str, found: dict[str, list[tuple[float, str]]]) -> None:
    """Adds each figure of the run outside its tolerance, by name: its ratio and the run."""
    for row in rows:
        if row.figure.startswith(SERVICES):
            one = agreement([row])
            if one.misses():
                found.setdefault(one.worst_op, []).append((one.worst_ratio, run))
    view = agreement(rows)
    by_name = {r.figure: r for r in rows}
    for q, figure in VIEW_ROWS.items():
        if f"view p{q}" in view.misses():
            found.setdefault(f"view p{q}", []).append((by_name[figure].ratio or 0.0, run))


def readme_table() -> str:
    """The table, then how many runs agree on every count, then each figure that misses its
    tolerance: in how many runs, and its ratios' range."""
    head = [f"chat {n}" for n in SIZES] + [f"idle {n}" for n in SIZES]
    lines = ["| strategy | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    found: dict[str, list[tuple[float, str]]] = {}
    counted = runs = 0
    for routing in STRATEGIES:
        cells = []
        for folder, kind in ((ROOT, "chat"), (ROOT / "idle", "idle")):
            for n in SIZES:
                run = folder / f"{routing}-{n}"
                if not run.is_dir():
                    cells.append("-")
                    continue
                rows = validate(run, replications=REPLICATIONS)
                whole = agreement(rows)
                cells.append(cell(whole, kind == "chat"))
                runs += 1
                counted += whole.worst_op not in whole.misses()
                _misses(rows, f"{kind} {routing}-{n}", found)
        lines.append(f"| {routing} | " + " | ".join(cells) + " |")
    lines.append(f"\nevery count within 5 %: {counted} of {runs} runs")
    for name, missed in sorted(found.items(), key=lambda kv: -len(kv[1])):
        runs_named = ", ".join(f"{run} {ratio:.2f}" for ratio, run in missed)
        lines.append(f"\n{name} misses in {len(missed)} of {runs}: {runs_named}")
    return "\n".join(lines)


def _ratio(rows: dict[str, Row], figure: str) -> str:
    row = rows.get(figure)
    return "-" if row is None or row.ratio is None else f"{row.ratio:.2f}"


def docs_row(name: str, cpu_share: float | None = None, emulators: bool = False) -> str:
    """`cpu_share`, `emulators`: as `semichat model --validate`'s `--cpu-share`, `--emulators`
    (the row's label says which)."""
    idle = name.startswith("idle/")
    run = ROOT / name
    found = validate(run, replications=REPLICATIONS, cpu_share=cpu_share, emulators=emulators)
    rows = {r.figure: r for r in found}
    share = f"{cpu_share or run_cpu_share(read_results(run)[1]):.2f}"
    label = Path(name).name
    if cpu_share == 1.0:
        label += " (whole core)"
    elif cpu_share is not None:
        label += f" (share {cpu_share})"
    if emulators:
        label += " (emulators)"
    if not idle:
        return f"| {label} | {share} | " + " | ".join(_ratio(rows, f) for f in CHAT_COLUMNS) + " |"
    counts = ", ".join(
        f"{f.split(':', 1)[1]} {r.model:.0f}/{r.measured or 0:.0f}"
        for f, r in rows.items()
        if f.startswith(("dynamodb:", "sqs:"))
    )
    units = [_ratio(rows, f"dynamodb {k} units") for k in ("read", "write")]
    return f"| {label} | {share} | {counts} | " + " | ".join(units) + " |"


def repeats_table() -> str:
    """Per strategy, the model against each of its three 100-user chat runs, and what those
    runs measured: `BatchWriteItem` requests per send (the marks; `instance` adds its registry's)
    and view p50 / p99, run by run (one run is one sample)."""
    head = (
        "| strategy | every count within 5 % | count furthest, per run | view p50 ratio, per run"
        " | view p99 ratio, per run | measured: BatchWriteItem per send"
        " | measured: view p50 / p99 ms |"
    )
    lines = [head, "|---" * 7 + "|"]
    for routing in STRATEGIES:
        runs = [ROOT / f"{routing}-100"] + [
            ROOT / "repeats" / f"{routing}-100-{k}" for k in range(2, REPEATS + 1)
        ]
        found = [agreement(validate(run, replications=REPLICATIONS)) for run in runs]
        within = sum(a.worst_op not in a.misses() for a in found)
        worst = ", ".join(f"{a.worst_op} {a.worst_ratio:.2f}" for a in found)
        p50 = " / ".join(f"{a.view_p50:.2f}" for a in found if a.view_p50 is not None)
        p99 = " / ".join(f"{a.view_p99:.2f}" for a in found if a.view_p99 is not None)
        marks, view = [], []
        for run in runs:
            results = read_results(run)[1]
            sends = results["sends"]["attempted"]
            marks.append(f"{results['backend']['requests']['dynamodb:BatchWriteItem'] / sends:.2f}")
            steady = json.loads((run / CLIENT_FILE).read_text())["steady"]["user_view"]
            view.append(f"{steady['50']:.0f} / {steady['99']:.0f}")
        lines.append(
            f"| {routing} | {within} of {len(runs)} | {worst} | {p50} | {p99} | "
            f"{', '.join(marks)} | {', '.join(view)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", nargs="+", metavar="RUN", help="R-N, or idle/R-N")
    parser.add_argument("--cpu-share", type=float, help="with --docs: the server's share")
    parser.add_argument("--emulators", action="store_true", help="with --docs: queue there")
    parser.add_argument("--repeats", action="store_true", help="three 100-user runs each")
    args = parser.parse_args()
    if args.repeats:
        print(repeats_table())
        return
    if not args.docs:
        print(readme_table())
        return
    print("\n".join(docs_row(n, args.cpu_share, args.emulators) for n in args.docs))


if __name__ == "__main__":
    main()
