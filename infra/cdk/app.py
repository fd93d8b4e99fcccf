"""The semichat CDK app: `make synth` runs it; so do `cdk synth` and `cdk deploy` in this folder.

Synthesizes into `cdk.out/` beside this file, with cdk-nag's AWS Solutions checks:
- the `Semichat` stack of `semichat/aws/stack.py` (tables from `TABLE_SPECS`, the server's
  policy from `semichat/aws/iam.py`);
- one compute stack per routing strategy x deployment pairing that can work
  (`semichat/deploy/`: `SemichatFargatePerUserQueue`, `SemichatLambdaFifo`, ...), and one line
  per pairing refused, saying why.

Choices come as context (`-c semichat:auth=demo`, ...; see `semichat/deploy/config.py`). Exits
non-zero when cdk-nag reports a finding that is neither fixed nor suppressed with a reason, or
when the choices cannot be deployed. The CDK command-line tool is not needed to synthesize.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The package of the checkout this app is in, whichever one the interpreter has installed: the
# image it builds is this checkout's too (its Dockerfile, at the root).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from semichat.deploy.config import DeployConfigError
from semichat.deploy.synthesis import synthesize_app


def main() -> int:
    # `cdk synth` tells the app where to write; run directly, it writes beside this file.
    outdir = os.environ.get("CDK_OUTDIR") or str(Path(__file__).resolve().parent / "cdk.out")
    try:
        result = synthesize_app(outdir)
    except DeployConfigError as exc:
        print(f"cannot deploy: {exc}", file=sys.stderr)
        return 2
    t = result.timeouts
    print(f"synthesized {outdir}: {len(result.compute)} pairings")
    print(
        f"  timeouts: stream max {t.server.stream_max_seconds:g} s, heartbeat "
        f"{t.server.heartbeat_seconds:g} s, ALB idle {t.alb_idle_timeout_seconds} s, "
        f"deregistration {t.deregistration_delay_seconds} s, Lambda {t.function_timeout_seconds} s"
    )
    unexplained = 0
    for stack in result.stacks:
        counts: dict[str, int] = {}
        for row in stack.nag_rows:
            counts[row["Compliance"]] = counts.get(row["Compliance"], 0) + 1
        suppressed = sorted(
            row["Rule ID"].removeprefix("AwsSolutions-")
            for row in stack.nag_rows
            if row["Compliance"] == "Suppressed"
        )
        print(
            f"  {stack.name}: cdk-nag AwsSolutions {counts.get('Compliant', 0)} compliant, "
            f"{len(suppressed)} suppressed with a reason ({', '.join(suppressed)})"
        )
        for row in stack.unexplained:
            print(f"    UNEXPLAINED {row['Rule ID']} on {row['Resource ID']}: {row['Rule Info']}")
        unexplained += len(stack.unexplained)
    for pairing, reason in result.refused.items():
        print(f"  refused {pairing}: {reason}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
