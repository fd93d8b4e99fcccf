"""docs/deploy.md's walk-throughs are what the app synthesizes.

Each ```` ```sh walkthrough ```` block is read as a shell session: its `cdk deploy` line's
stacks and `-c` context are synthesized (once per block, for the module: slow), the stacks it
deploys and destroys exist and are not refused, `destroy` is given the same context, the output
it reads is one the stack has, and its `semichat simulate` line parses with the real command
line and names the deployed stack's strategy. The teardown block names every table.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from semichat.aws.tables import TABLE_SPECS
from semichat.cli import build_parser

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("aws_cdk") is None and os.environ.get("CI") != "true",
    reason="the CDK app needs the infra extra: make install-infra",
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"
CDK = ["npx", "aws-cdk@2"]
# What the shell would have computed: this machine's address, as a documentation address.
COMMAND_SUBSTITUTIONS = {"ME": "203.0.113.7/32"}


def blocks(kind: str) -> list[list[str]]:
    """The lines of each ```` ```sh <kind> ```` block, comments dropped."""
    found = re.findall(rf"^```sh {kind}\n(.*?)^```$", DOC.read_text(), re.M | re.S)
    return [
        [line.split("  # ")[0].strip() for line in block.splitlines() if line.strip()]
        for block in found
    ]


@dataclass
class Session:
    """A walk-through block: variables set, and each command as its words."""

    variables: dict[str, str] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, lines: list[str]) -> Session:
        session = cls()
        for line in lines:
            assignment = re.fullmatch(r"([A-Z]+)=(.*)", line)
            if assignment:
                name, value = assignment.groups()
                session.raw[name] = value
                session.variables[name] = COMMAND_SUBSTITUTIONS.get(name, value)
                continue
            session.commands.append(
                [
                    re.sub(r"\$([A-Z]+)", lambda m: session.variables[m[1]], w)
                    for w in shlex.split(line)
                ]
            )
        return session

    def cdk(self, verb: str) -> list[list[str]]:
        return [c[3:] for c in self.commands if c[:3] == [*CDK, verb]]

    def simulate(self) -> list[str]:
        (command,) = [c for c in self.commands if c[:2] == ["semichat", "simulate"]]
        return command[1:]


def split_cdk_args(args: list[str]) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Stacks, `-c` context, and other options of a `cdk deploy`/`destroy` command."""
    stacks: list[str] = []
    context: dict[str, str] = {}
    options: dict[str, str] = {}
    words = iter(args)
    for word in words:
        if word in ("-c", "--context"):
            key, _, value = next(words).partition("=")
            context[key] = value
        elif word.startswith("--"):
            options[word] = next(words)
        else:
            stacks.append(word)
    return stacks, context, options


WALKTHROUGHS = [Session.read(b) for b in blocks("walkthrough")]


@dataclass(frozen=True)
class Walkthrough:
    session: Session
    stacks: list[str]
    context: dict[str, str]
    synthesis: Any


@pytest.fixture(scope="module", params=range(len(WALKTHROUGHS)), ids=lambda i: f"block{i}")
def walkthrough(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walkthrough]:
    from semichat.deploy.synthesis import synthesize_app

    session = WALKTHROUGHS[request.param]
    (deploy,) = session.cdk("deploy")
    stacks, context, _ = split_cdk_args(deploy)
    synthesis = synthesize_app(tmp_path_factory.mktemp("cdk.out"), context)
    yield Walkthrough(session, stacks, context, synthesis)


def test_the_doc_has_a_fargate_and_a_lambda_walkthrough() -> None:
    deployed = [split_cdk_args(s.cdk("deploy")[0])[0] for s in WALKTHROUGHS]
    assert deployed == [["SemichatFargatePerUserQueue"], ["SemichatLambdaPerUserQueue"]]


def _stack(w: Walkthrough, name: str) -> Any:
    (found,) = [(p, s) for p, s in w.synthesis.compute.items() if p.stack_name == name]
    return found


def test_the_deployed_stacks_are_synthesized_with_the_docs_context(w: Walkthrough) -> None:
    refused = {p.stack_name: why for p, why in w.synthesis.refused.items()}
    for name in w.stacks:
        assert name not in refused, refused.get(name)
        _stack(w, name)
    config = w.synthesis.config
    assert config.context() == w.context  # every key the doc gives is one the app reads
    assert config.auth == "demo" and config.allowed_cidr is not None


def test_destroy_names_the_deployed_stacks_with_the_same_context(w: Walkthrough) -> None:
    (destroy,) = w.session.cdk("destroy")
    stacks, context, _ = split_cdk_args(destroy)
    assert stacks == w.stacks
    assert context == w.context


def test_the_url_read_back_is_an_output_of_the_deployed_stack(w: Walkthrough) -> None:
    (deploy,) = w.session.cdk("deploy")
    _, _, options = split_cdk_args(deploy)
    outputs_file = options["--outputs-file"]
    read = re.search(r'open\("([^"]+)"\)\)\["(\w+)"\]\["(\w+)"\]', w.session.raw["URL"])
    assert read is not None, w.session.raw["URL"]
    assert read[1] == outputs_file
    _, stack = _stack(w, read[2])
    assert read[3] in stack.template["Outputs"]


def test_the_simulation_parses_and_targets_the_deployed_strategy(w: Walkthrough) -> None:
    args = build_parser().parse_args(w.session.simulate())
    assert args.target == w.session.variables["URL"]
    (name,) = w.stacks
    pairing, _ = _stack(w, name)
    assert args.routing == pairing.routing
    # /metrics is summed over one server process: the Fargate walk-through runs one task.
    if pairing.deployment == "fargate":
        assert w.synthesis.config.tasks == 1


def test_the_teardown_deletes_every_table() -> None:
    (block,) = blocks("teardown")
    loop = next(line for line in block if line.startswith("for table in"))
    names = loop.removeprefix("for table in").split(";")[0].split()
    assert names == [spec.logical_name for spec in TABLE_SPECS]


@pytest.fixture
def w(walkthrough: Walkthrough) -> Walkthrough:
    return walkthrough
