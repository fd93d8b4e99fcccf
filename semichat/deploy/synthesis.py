"""The whole CDK app synthesized: the `Semichat` stack (tables, policy) and one compute stack per
allowed pairing, every one checked by cdk-nag, and a one-line reason for each pairing refused.

`infra/cdk/app.py` prints this; the tests read it. A pairing is refused when it cannot work
(`pairings.refusal`) or when the derived timeouts break its tier's rules (a lifetime too long
for Lambda's 900 s); a compute stack whose synthesized template breaks them fails synthesis.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from semichat.aws.stack import STACK_NAME, build_app, unexplained_findings
from semichat.deploy import templates
from semichat.deploy.config import DeployConfig
from semichat.deploy.pairings import Pairing, every_pairing, refusal
from semichat.deploy.stacks import ComputeStack
from semichat.deploy.timeouts import Timeouts, derive, fargate_violations, function_violations


@dataclass(frozen=True)
class StackSynthesis:
    name: str
    template: dict[str, Any]
    # cdk-nag's report: one row per rule and resource (`Compliance`: Compliant, Non-Compliant,
    # Suppressed with its `Exception Reason`, or N/A).
    nag_rows: list[dict[str, str]]

    @property
    def unexplained(self) -> list[dict[str, str]]:
        """Findings neither fixed nor suppressed with a reason."""
        return unexplained_findings(self.nag_rows)


@dataclass(frozen=True)
class AppSynthesis:
    outdir: Path
    config: DeployConfig
    timeouts: Timeouts
    tables: StackSynthesis
    compute: dict[Pairing, StackSynthesis] = field(default_factory=dict)
    refused: dict[Pairing, str] = field(default_factory=dict)

    @property
    def stacks(self) -> list[StackSynthesis]:
        return [self.tables, *self.compute.values()]


def timeout_refusal(pairing: Pairing, timeouts: Timeouts) -> str | None:
    if pairing.deployment == "fargate":
        problems = fargate_violations(timeouts.fargate)
    else:
        problems = function_violations(timeouts.function)
    return "; ".join(problems) or None


def synthesize_app(outdir: str | Path, context: Mapping[str, Any] | None = None) -> AppSynthesis:
    """Synthesize into `outdir` (jsii starts Node.js: tens of seconds) and read back every
    template and cdk-nag report. `context`: as `cdk synth -c KEY=VALUE` would give it."""
    out = Path(outdir)
    app = build_app(out, context)
    config = DeployConfig.from_context(app.node.try_get_context)
    timeouts = derive(config.stream_max_seconds)
    tables = cdk.Stack.of(app.node.find_child(STACK_NAME))
    built: list[Pairing] = []
    refused: dict[Pairing, str] = {}
    for pairing in every_pairing():
        reason = refusal(pairing, config) or timeout_refusal(pairing, timeouts)
        if reason is not None:
            refused[pairing] = reason
            continue
        ComputeStack(app, pairing, config, timeouts).add_stack_dependency(tables)
        built.append(pairing)
    app.synth()
    compute = {p: read_stack(out, p.stack_name) for p in built}
    for pairing, stack in compute.items():
        problems = templates.violations(stack.template)
        if problems:
            raise RuntimeError(f"{pairing.stack_name}: {'; '.join(problems)}")
    return AppSynthesis(
        outdir=out,
        config=config,
        timeouts=timeouts,
        tables=read_stack(out, STACK_NAME),
        compute=compute,
        refused=refused,
    )


def read_stack(outdir: Path, name: str) -> StackSynthesis:
    template = json.loads((outdir / f"{name}.template.json").read_text())
    # cdk-nag names it `AwsSolutions-<stage>-<stack>-NagReport.csv` (stage empty here).
    (report,) = outdir.glob(f"AwsSolutions-*{name}-NagReport.csv")
    with report.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return StackSynthesis(name=name, template=template, nag_rows=rows)
