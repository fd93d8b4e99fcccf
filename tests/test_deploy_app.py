"""`make synth`'s program, `infra/cdk/app.py`, run as the Makefile and `cdk synth` run it.

Context arrives as the CDK command line passes it (`CDK_CONTEXT_JSON`), output goes where it
says (`CDK_OUTDIR`). Slow: jsii starts Node.js in each run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("aws_cdk") is None and os.environ.get("CI") != "true",
    reason="the CDK app needs the infra extra: make install-infra",
)

APP = Path(__file__).resolve().parent.parent / "infra" / "cdk" / "app.py"
SYNTH_TIMEOUT_S = 300


def run_app(
    outdir: Path, context: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Without jsii's silencers from this process (set once anything here imported the CDK): the
    # app must set them itself, or Node.js 20's end-of-life banner lands on its stderr.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    env |= {"CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context or {})}
    return subprocess.run(
        [sys.executable, str(APP)],
        cwd=APP.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def app_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    return run_app(tmp_path_factory.mktemp("cdk.out"))


def test_synth_writes_every_allowed_pairing_and_refuses_the_others_in_one_line(
    app_run: subprocess.CompletedProcess[str],
) -> None:
    assert app_run.returncode == 0, app_run.stdout + app_run.stderr
    lines = app_run.stdout.splitlines()
    assert lines[0].endswith(": 8 pairings")
    refused = [line.strip() for line in lines if line.strip().startswith("refused ")]
    assert [line.split(":")[0] for line in refused] == [
        "refused sharded on lambda",
        "refused instance on lambda",
    ]
    stacks = [line.split(":")[0].strip() for line in lines if "cdk-nag AwsSolutions" in line]
    assert len(stacks) == 9 and stacks[0] == "Semichat"
    assert "UNEXPLAINED" not in app_run.stdout


@pytest.mark.slow
def test_a_choice_that_cannot_be_deployed_fails_in_one_line(tmp_path: Path) -> None:
    result = run_app(tmp_path, {"semichat:auth": "demo"})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("cannot deploy: semichat:auth=demo") and "allowed-cidr" in line
