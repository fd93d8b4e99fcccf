"""Benchmark: what a latency profile replayed beneath the AWS client does to a chat run.

1. `semichat calibrate --backend embedded` writes the embedded backend's own profile; chat runs
   without faults and with `--faults latency=<that profile>` must agree (wire and view p50
   within 25 %): the replay tops each call up to the time it took anyway.
2. With `--faults latency=aws`: the wire p50 expected from the profile (a send's DynamoDB
   transaction, half the SendMessage to the recipient's queue (its way there) and the waiting
   poll's wake-up, each at its p50, plus what the baseline run spent outside those calls)
   against the measured one.

3. `semichat calibrate --backend embedded --replay aws`: each call measured through the aws
   profile's replay, against the profile's own percentiles (the layer alone, without the chat).

Each configuration runs `--repeat` times, one at a time; the table shows each run and the spread.

    python -m benchmarks.bench_latency_replay [--users 50] [--duration 60] [--repeat 2]
        [--out /tmp/latency-bench] [--skip-aws] [--skip-runs]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from semichat.aws.latency import load_profile
from semichat.processes import unwind_on_sigterm

# The calls between a send's request and the recipient's notification on the wire (service.py:
# participants are cached; the `notified` mark is written after the announcement), with the
# share of each on the path: the message reaches the queue halfway through its SendMessage.
WIRE_PATH = {
    "dynamodb:TransactWriteItems": 1.0,
    "sqs:SendMessage": 0.5,
    "sqs:ReceiveMessage.wake": 1.0,
}


def semichat(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "semichat", *args], check=False)


def simulate(out: Path, users: int, duration: float, faults: str) -> dict[str, Any]:
    args = ["simulate", "--scenario", "chat", "--users", str(users), "--duration", str(duration)]
    args += ["--out", str(out)]
    if faults:
        args += ["--faults", faults]
    semichat(*args)
    results = json.loads((out / "chat" / "latest" / "results.json").read_text())
    return {lv: results[lv]["latency_ms"]["p50"] for lv in ("wire", "user_view")}


def expected_wire_p50(profile: str, replaced: str, baseline_wire_p50: float) -> float:
    """`profile`'s p50 of the wire path's calls, plus the baseline's time outside them (its wire
    p50 less the same calls' p50 in `replaced`, the backend's own calibration)."""
    new, old = load_profile(profile), load_profile(replaced)
    on_path = sum(new.operations[k].quantile(50) * share for k, share in WIRE_PATH.items())
    own = sum(
        old.operations[k].quantile(50) * share
        for k, share in WIRE_PATH.items()
        if k in old.operations
    )
    return on_path + max(0.0, baseline_wire_p50 - own)


def replay_check(out: Path) -> None:
    """Print the aws profile's p50 / p99 beside those measured through its replay."""
    measured_path = out / "emb-replaying-aws.json"
    semichat(
        "calibrate", "--backend", "embedded", "--replay", "aws", "--output", str(measured_path)
    )
    aws, measured = load_profile("aws"), load_profile(str(measured_path))
    print(f"\n{'operation':32} {'aws p50':>8} {'replayed':>8} {'aws p99':>8} {'replayed':>8}")
    for key, dist in aws.operations.items():
        got = measured.operations.get(key)
        if got is not None:
            cells = [dist.quantile(50), got.quantile(50), dist.quantile(99), got.quantile(99)]
            print(f"{key:32} " + " ".join(f"{c:8.1f}" for c in cells))


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}..{max(values):.1f})"


def main() -> None:
    unwind_on_sigterm()  # stop what it started when it is stopped
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/latency-bench"))
    parser.add_argument("--skip-aws", action="store_true")
    parser.add_argument("--skip-runs", action="store_true", help="only the replay check")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    replay_check(args.out)
    if args.skip_runs:
        return
    profile = args.out / "emb.json"
    semichat("calibrate", "--backend", "embedded", "--output", str(profile))
    configs = {"none": "", "latency=emb": f"latency={profile}"}
    if not args.skip_aws:
        configs["latency=aws"] = "latency=aws"
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    for _ in range(args.repeat):  # interleaved, so that drift on the machine hits each alike
        for name, faults in configs.items():
            runs[name].append(
                simulate(args.out / name.replace("=", "-"), args.users, args.duration, faults)
            )
    print(f"\n{'faults':14} {'wire p50 ms (min..max)':>26} {'view p50 ms (min..max)':>26}")
    medians = {}
    for name, results in runs.items():
        wire = [r["wire"] for r in results]
        view = [r["user_view"] for r in results]
        medians[name] = (statistics.median(wire), statistics.median(view))
        print(f"{name:14} {_spread(wire):>26} {_spread(view):>26}   runs {results}")
    base, replay = medians["none"], medians["latency=emb"]
    print(f"replay / none: wire {replay[0] / base[0]:.2f}, view {replay[1] / base[1]:.2f}")
    if "latency=aws" in medians:
        expected = expected_wire_p50("aws", str(profile), base[0])
        measured = medians["latency=aws"][0]
        print(f"latency=aws: wire p50 expected {expected:.1f} ms, measured {measured:.1f} ms")
    (args.out / "summary.json").write_text(json.dumps({"runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
