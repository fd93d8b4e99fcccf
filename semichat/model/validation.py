"""`semichat model --validate RUN_DIR`: the model of a measured run's configuration beside what
the run counted: requests by operation, DynamoDB units, and latency on the wire and in the view.

The run's own per-operation latency is the model's input (unless a profile is given), and its
activity comes from `params.json`. The model is replicated (`replications` seeds) and averaged,
so that what remains between the columns is the run's own noise and the model's error.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from semichat.harness.run_record import RunRecordError, resolve_run_dir
from semichat.model.cpu import measured_share
from semichat.model.emulators import runnable_fraction, service_ms
from semichat.model.inputs import Activity, ModelInputError, ProcessLimits, Setup
from semichat.model.opens import stream_opens
from semichat.model.overheads import client_percentiles, slowness_trace, with_overheads
from semichat.model.profile import (
    DEFAULT_PROFILE,
    LatencyProfile,
    completed,
    load_profile,
    profile_from_results,
)
from semichat.model.simulation import SPAWN_S, Window, simulate
from semichat.model.steady import QUANTILES, percentiles_ms, run_percentiles_ms, warmup_s
from semichat.model.world import PROCESS, USER

Samples = tuple[list[float], list[float]]  # latencies (s), their sends' starts (s)


@dataclass(frozen=True)
class Row:
    figure: str
    model: float
    measured: float | None

    @property
    def ratio(self) -> float | None:
        if not self.measured:
            return None
        return self.model / self.measured


def read_results(run_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """A run's directory and results: a whole run, or one kept small (`records.keep`)."""
    given = Path(run_dir)
    if (given / "results.json").is_file() and not (given / "events").is_dir():
        path = given
    else:
        try:
            path = resolve_run_dir(given)
        except RunRecordError as exc:
            raise ModelInputError(str(exc)) from None
    results_path = path / "results.json"
    if not results_path.is_file():
        raise ModelInputError(f"{path} has no results.json: judge it first (semichat check)")
    results = json.loads(results_path.read_text())
    if not results.get("backend"):
        raise ModelInputError(f"{path}: its server counted no requests by operation")
    return path, results


def run_inputs(results: dict[str, Any]) -> tuple[Activity, Setup, Window]:
    params = results.get("params") or {}
    load = params.get("load") or {}
    users = int(params.get("users", 0))
    # Scenario `idle`: only the first `active` users chat (-1: everyone; one Locust process).
    active = int(load.get("active", -1)) if params.get("scenario") == "idle" else -1
    activity = Activity(
        users=users,
        conversation_size=int(load.get("conversation_size", 3)),
        send_interval_s=float(load.get("send_interval", 2.0)),
        tabs=int(load.get("tabs", 1)),
        active=None if active < 0 else active,
    )
    setup = Setup(
        routing=str(params.get("routing", "")),
        shards=int(params.get("shards", 4)),
        id_prefix=f"{load.get('run_tag', 'sim')}-w0-u",  # ChatUser.identity_of, one worker
    )
    rate = float(params.get("spawn_rate") or 0.0)
    window = Window(
        duration_s=float(params["duration"]),
        drain_s=float(params.get("drain", 8)),
        # `--spawn-rate R` starts the users over N / R seconds; 0, within about two.
        spawn_s=users / rate if rate > 0 else SPAWN_S,
        spawn_rate=rate,
    )
    return activity, setup, window


def with_opens(window: Window, run_dir: Path) -> Window:
    """`window` starting each user when the run's opened its stream (`opens.py`), if known."""
    opens = stream_opens(run_dir)
    return replace(window, opens=tuple(sorted(opens.items()))) if opens else window


def run_cpu_share(results: dict[str, Any]) -> float:
    """The share of a core the run's server got while runnable (`cpu.measured_share`)."""
    backend = results.get("backend") or {}
    return measured_share(backend.get("server_cpu_s"), backend.get("server_cpu_wait_s"))


def run_cpu_ms(results: dict[str, Any]) -> float:
    """The run's server CPU per backend request (HTTP handling included), in ms; the
    default `ProcessLimits.cpu_ms_per_request` when the run did not count its CPU."""
    backend = results.get("backend") or {}
    requests = sum(backend.get("requests", {}).values())
    cpu_s = backend.get("server_cpu_s")
    if not cpu_s or not requests:
        return ProcessLimits.cpu_ms_per_request
    return 1000 * cpu_s / requests


def validate(
    run_dir: str | Path,
    profile: LatencyProfile | None = None,
    replications: int = 5,
    replay: bool = True,
    cpu_share: float | None = None,
    emulators: bool = False,
) -> list[Row]:
    """`replay`: replay the run's slowness over time (`overheads.slowness_trace`).
    `cpu_share`: the server's share of a core (`model/cpu.py`); by default the run's own.
    `emulators`: queue at the run's emulators (`model/emulators.py`) when it recorded them; off
    by default (`emulators.py` says why)."""
    path, results = read_results(run_dir)
    activity, setup, window = run_inputs(results)
    window = with_opens(window, path)
    core = run_cpu_share(results) if cpu_share is None else cpu_share
    setup = replace(
        setup,
        cpu_share=core,
        cpu_ms_per_request=run_cpu_ms(results),
        emulator_ms=service_ms(results) if emulators else (),
    )
    setup.check()
    if profile is None:
        profile = profile_from_results(results, str(path))
        if activity.chatting == 0:
            # Nobody sends in an idle run: the send path's operations were never made.
            profile = completed(profile, load_profile(DEFAULT_PROFILE))
    # The clients' time beyond the backend calls, measured in the run (`overheads.py`).
    trace = slowness_trace(path) if replay else None
    # Two passes before the replications: the first learns how long the model holds each
    # operation's calls beyond their transit (its loop, its emulators), which the profile's
    # latencies hold already; the second, with that taken off, times the sends whose client
    # overheads the replications add.
    held = simulate(activity, setup, profile, window, 0, trace, record_held=True).tally.held_s
    first = simulate(activity, setup, profile, window, seed=0, trace=trace, held=held)
    profile = with_overheads(profile, path, first.tally.send_s)
    counts: Counter[str] = Counter()
    units = np.zeros(2)
    wire: Samples = ([], [])
    view: Samples = ([], [])
    send: list[float] = []
    sends = 0
    per_op_units: dict[str, Counter[str]] = {"read": Counter(), "write": Counter()}
    for seed in range(1, replications + 1):
        sim = simulate(activity, setup, profile, window, seed, trace, held)
        for share in (USER, PROCESS):
            counts.update(sim.tally.requests[share])
        units += (sim.tally.read_units, sim.tally.write_units)
        per_op_units["read"].update(sim.tally.read_units_by_op)
        per_op_units["write"].update(sim.tally.write_units_by_op)
        wire[0].extend(sim.tally.wire_s)
        wire[1].extend(sim.tally.wire_sent)
        view[0].extend(sim.tally.view_s)
        view[1].extend(sim.tally.view_sent)
        send += sim.tally.send_s
        sends += sim.sends
    backend = results["backend"]
    measured = backend["requests"]
    rows = _input_rows(core, setup, results, window)
    rows.append(Row("sends", sends / replications, results.get("sends", {}).get("attempted")))
    client = client_percentiles(path)["send"]
    rows.append(Row("send p50 (ms)", _p(send, 50), client.get("50")))
    for op in sorted(set(counts) | set(measured)):
        rows.append(Row(op, counts[op] / replications, measured.get(op, 0)))
    rows += _units_per_request(per_op_units, counts, backend)
    rows.append(Row("dynamodb read units", units[0] / replications, backend["dynamodb_read_units"]))
    rows.append(
        Row("dynamodb write units", units[1] / replications, backend["dynamodb_write_units"])
    )
    rows += _latency_rows(
        path, results, warmup_s(window.spawn_s, activity.send_interval_s), wire, view
    )
    return rows


def _input_rows(core: float, setup: Setup, results: dict[str, Any], window: Window) -> list[Row]:
    """The inputs measured from the run: the server's share of a core, the emulators' CPU."""
    rows = [Row("server CPU share (input, % of a core)", 100 * core, None)]
    rows += [
        Row(f"{n} emulator CPU (input, ms a request)", ms, None) for n, ms in setup.emulator_ms
    ]
    # Recorded, not an input: above 100 % when its threads' waits overlap (`emulators.py`).
    rows += [
        Row(f"{n} emulator runnable (% of the run)", 100 * f, None)
        for n, f in runnable_fraction(results, window.duration_s + window.drain_s).items()
    ]
    return rows


def _latency_rows(
    path: Path, results: dict[str, Any], from_s: float, wire: Samples, view: Samples
) -> list[Row]:
    """Latency after the warm-up, judged (`steady.py`); then the whole run's, for the record.
    A run kept before the warm-up was counted is judged on its whole run."""
    rows = []
    measured_steady = run_percentiles_ms(path, from_s)
    if measured_steady:
        rows.append(Row("latency from (s after the start, input)", from_s, None))
        for level, (samples, sent_at) in (("wire", wire), ("user_view", view)):
            model_q = percentiles_ms(samples, sent_at, from_s)
            for q in QUANTILES:
                rows.append(
                    Row(
                        f"{level} p{q} (ms)",
                        model_q.get(str(q), float("nan")),
                        measured_steady.get(level, {}).get(str(q)),
                    )
                )
    suffix = ", whole run" if measured_steady else ""
    for level, (samples, _) in (("wire", wire), ("user_view", view)):
        got = results[level]["latency_ms"]
        for q in QUANTILES:
            rows.append(Row(f"{level} p{q}{suffix} (ms)", _p(samples, q), got.get(f"p{q}")))
    return rows


def _units_per_request(
    units: dict[str, Counter[str]], counts: Counter[str], backend: dict[str, Any]
) -> list[Row]:
    """DynamoDB units per request, by operation: how each request is priced, model and run."""
    rows = []
    for kind in ("read", "write"):
        counted = backend[f"{kind}_units"]
        for op in sorted(set(units[kind]) | set(counted)):
            model = units[kind][op] / counts[op] if counts[op] else 0.0
            n = backend["requests"].get(op, 0)
            measured = counted.get(op, 0) / n if n else None
            rows.append(Row(f"{kind} units per {op}", model, measured))
    return rows


def _p(seconds: Sequence[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q)) if len(seconds) else float("nan")


def format_rows(rows: list[Row]) -> str:
    lines = [f"{'figure':46}{'model':>12}{'measured':>12}{'ratio':>8}"]
    for r in rows:
        measured = "-" if r.measured is None else f"{r.measured:.1f}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.3f}"
        lines.append(f"{r.figure:46}{r.model:>12.1f}{measured:>12}{ratio:>8}")
    return "\n".join(lines)
