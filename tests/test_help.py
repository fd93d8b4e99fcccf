"""`semichat --help` and each command's `--help` speak to users: what it does, an example, and
no word about how it is built."""

from __future__ import annotations

import argparse
import re

import pytest

from semichat.cli import build_parser
from semichat.cli.help import COMMANDS

# Words that describe the code rather than the tool.
IMPLEMENTATION = re.compile(
    r"\b(argparse|dispatch\w*|function|module|class|moto|gevent|greenlet|subprocess|"
    r"SO_REUSEPORT|\w+\.py)\b",
    re.IGNORECASE,
)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _without_examples(text: str) -> str:
    # Example command lines may name files (`loadtests/chat.py`); prose may not.
    return text.split("examples:")[0]


def test_the_top_level_help_says_what_the_tool_is_with_examples() -> None:
    text = build_parser().format_help()
    assert "the instrument that measures whether they arrive" in text
    assert "examples:\n  semichat serve" in text
    assert not IMPLEMENTATION.search(_without_examples(text)), IMPLEMENTATION.findall(text)


def test_every_command_has_a_description_and_an_example() -> None:
    commands = _subparsers()
    assert set(commands) == set(COMMANDS)
    for name, parser in commands.items():
        assert parser.description and len(parser.description) > 60, name
        assert parser.epilog and f"\n  semichat {name}" in "\n" + parser.epilog.split(":", 1)[1], (
            name
        )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_help_text_describes_the_implementation(name: str) -> None:
    text = _without_examples(_subparsers()[name].format_help())
    assert not IMPLEMENTATION.search(text), IMPLEMENTATION.findall(text)
