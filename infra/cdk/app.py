"""The semichat CDK app: `make synth` runs it; so do `cdk synth` and `cdk deploy` in this folder.

Synthesizes the stack of `semichat/aws/stack.py` (tables from `TABLE_SPECS`, the server's policy
from `semichat/aws/iam.py`) into `cdk.out/` beside this file, with cdk-nag's AWS Solutions checks,
and exits non-zero when cdk-nag reports a finding that is neither fixed nor suppressed with a
reason. The CDK command-line tool is not needed to synthesize.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from semichat.aws.stack import synthesize


def main() -> int:
    # `cdk synth` tells the app where to write; run directly, it writes beside this file.
    outdir = os.environ.get("CDK_OUTDIR") or str(Path(__file__).resolve().parent / "cdk.out")
    result = synthesize(outdir)
    counts: dict[str, int] = {}
    for row in result.nag_rows:
        counts[row["Compliance"]] = counts.get(row["Compliance"], 0) + 1
    print(f"synthesized {outdir}; cdk-nag AwsSolutions: {counts}")
    for row in result.nag_rows:
        if row["Compliance"] == "Suppressed":
            print(
                f"  suppressed {row['Rule ID']} on {row['Resource ID']}: {row['Exception Reason']}"
            )
    for row in result.unexplained:
        print(f"  UNEXPLAINED {row['Rule ID']} on {row['Resource ID']}: {row['Rule Info']}")
    return 1 if result.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
