"""The container image's entry command, run here the way the image runs it.

Reads the repository's `Dockerfile` (its `ENV` and `CMD`), lays a deployment's environment over
it (as ECS and Lambda do over an image's), then changes only what cannot be had here: the
embedded backend instead of AWS, loopback, a free port. The console script `semichat` of `CMD` is
`python -m semichat`'s own entry point; it runs as `python -m semichat` so that this checkout's
package is the one imported.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Image:
    environment: dict[str, str]
    command: list[str]


def read_dockerfile(path: Path = DOCKERFILE) -> Image:
    """The final stage's `ENV` (`KEY=VALUE` pairs) and exec-form `CMD`."""
    lines: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + line
        else:
            lines.append(line)
    environment: dict[str, str] = {}
    command: list[str] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            environment, command = {}, []
        elif instruction.upper() == "ENV":
            environment |= dict(pair.split("=", 1) for pair in shlex.split(rest))
        elif instruction.upper() == "CMD":
            command = json.loads(rest)
    return Image(environment, command)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Running:
    base: str
    environment: dict[str, str]


@contextmanager
def run_image_command(deployment_env: Mapping[str, str]) -> Iterator[Running]:
    """The image's CMD with its ENV, then `deployment_env`, then the local stand-ins."""
    image = read_dockerfile()
    assert image.command[0] == "semichat", image.command
    port = free_port()
    env = image.environment | dict(deployment_env)
    env |= {"SEMICHAT_BACKEND": "embedded", "SEMICHAT_HOST": "127.0.0.1"}
    env |= {"SEMICHAT_PORT": str(port)}
    process_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    process_env |= {"PYTHONPATH": str(ROOT)} | env
    proc = subprocess.Popen(
        [sys.executable, "-m", "semichat", *image.command[1:]],
        cwd=ROOT,
        env=process_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield Running(f"http://127.0.0.1:{port}", env)
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def first_status(url: str, within: float = START_TIMEOUT_S) -> tuple[int, dict[str, object]]:
    """Poll `url` until the server answers below 500 (what the Lambda adapter's readiness check
    waits for) or `within` passes; the status and JSON body of that answer."""
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            last = exc.code
            if exc.code < 500:
                return exc.code, {}
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer below 500 within {within:g} s; last: {last!r}")
