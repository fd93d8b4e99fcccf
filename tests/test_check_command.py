"""`semichat check RUN_DIR`: any recorded run judged as `simulate` judges it, and every record
that cannot be judged refused in one line naming the fault, with nothing written or changed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from semichat.cli import main
from semichat.harness.report import summary_table
from semichat.harness.run_dirs import new_run_directory

from .test_checker import connect, delivered_everywhere, end, send

ROOT = Path(__file__).resolve().parents[1]
TAG = "adhoc-1204000000"
USERS = [f"{TAG}-w0-u{i}" for i in range(3)]


def history(tag: str = TAG, lose: bool = False) -> list[dict[str, Any]]:
    users = [f"{tag}-w0-u{i}" for i in range(3)]
    events: list[dict[str, Any]] = [
        {"type": "run", "t": 0.0, "phase": "start", "params": {"run": tag}}
    ]
    events += [connect(u) for u in users]
    for n in range(5):
        mid = f"{tag}-m{n}"
        events.append(send(mid, 1.0 + n, user=users[n % 3], recipients=users))
        reached = users[:2] if lose and n == 0 else users
        events += delivered_everywhere(mid, 1.5 + n, reached)
    return [*events, end(60.0)]


def write_events(path: Path, events: list[dict[str, Any]], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)


def digest(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def check(*args: str) -> int:
    try:
        main(["check", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_a_plain_locust_run_is_judged_through_its_latest_link(tmp_path: Path, capsys) -> None:
    run_dir = new_run_directory(tmp_path / "runs", "adhoc")
    write_events(run_dir / "events" / "host-1.jsonl", history())
    events_before = digest(run_dir / "events")

    assert check(str(tmp_path / "runs" / "adhoc")) == 0
    out = capsys.readouterr().out
    results = json.loads((run_dir / "results.json").read_text())
    # The very table simulate prints, from the results check wrote.
    assert summary_table(results) in out
    assert f"run directory: {run_dir.resolve()}" in out
    assert results["user_view"]["expected"] == 15 and results["user_view"]["lost"] == 0
    assert (run_dir / "plots" / "latency.png").stat().st_size > 0
    assert digest(run_dir / "events") == events_before  # the record itself is untouched


def test_a_run_with_a_lost_message_fails_with_status_one(tmp_path: Path, capsys) -> None:
    write_events(tmp_path / "run" / "events" / "a.jsonl", history(lose=True))
    assert check(str(tmp_path / "run")) == 1
    out = capsys.readouterr().out
    assert "FAIL: 1 (message, tab) pair(s) never reached an open tab's view" in out


def _refused(tmp_path: Path, capsys, run_dir: Path, *args: str) -> str:
    before = digest(run_dir) if run_dir.exists() else {}
    assert check(str(run_dir), *args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    if run_dir.exists():
        assert digest(run_dir) == before  # nothing written, nothing changed
    return lines[0]


def test_a_missing_folder_is_named(tmp_path: Path, capsys) -> None:
    line = _refused(tmp_path, capsys, tmp_path / "nowhere")
    assert line == f"semichat check: {tmp_path / 'nowhere'}: no such folder"


def test_a_folder_without_events_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert "no events" in _refused(tmp_path, capsys, tmp_path / "empty")
    (tmp_path / "blank" / "events").mkdir(parents=True)
    (tmp_path / "blank" / "events" / "a.jsonl").write_text("\n")
    assert "no events recorded" in _refused(tmp_path, capsys, tmp_path / "blank")


def test_a_truncated_last_line_is_refused_unless_dropped(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    write_events(run_dir / "events" / "a.jsonl", history(), tail='{"type":"view","t":3')
    line = _refused(tmp_path, capsys, run_dir)
    assert f"{run_dir / 'events' / 'a.jsonl'}:{len(history()) + 1}: truncated JSON line" in line
    assert "--drop-truncated" in line

    assert check(str(run_dir), "--drop-truncated") == 0
    out = capsys.readouterr().out
    assert "dropped 1 truncated last line(s)" in out
    assert json.loads((run_dir / "results.json").read_text())["dropped_truncated_lines"] == 1


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        ('{"type": "send", "t": 1.0,', "not JSON"),
        ('{"level": "info", "msg": "hello"}', "not a semichat event (type None)"),
        ('["send", 1.0]', "not a semichat event (a JSON list)"),
        ('{"type": "view", "user": "x"}', "a view event without a numeric time t"),
    ],
)
def test_a_corrupt_or_foreign_line_is_named_by_file_and_line(
    tmp_path: Path, capsys, line: str, fault: str
) -> None:
    run_dir = tmp_path / "run"
    events = history()
    path = run_dir / "events" / "a.jsonl"
    write_events(path, events[:3])
    with path.open("a") as f:
        f.write(line + "\n")
        f.writelines(json.dumps(e) + "\n" for e in events[3:])
    message = _refused(tmp_path, capsys, run_dir, "--drop-truncated")
    assert message.startswith(f"semichat check: {path}:4: {fault}")


def test_events_of_two_runs_in_one_folder_are_refused(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    write_events(run_dir / "events" / "first.jsonl", history(TAG))
    write_events(run_dir / "events" / "second.jsonl", history("adhoc-1204000999"))
    line = _refused(tmp_path, capsys, run_dir)
    assert "events from 2 runs mixed" in line
    assert "first.jsonl" in line and "second.jsonl" in line


def test_users_of_two_runs_without_markers_are_refused_too(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    events = [e for e in history() if e["type"] != "run"]
    stray = [connect("sim-1204000001-w0-u7")]
    write_events(run_dir / "events" / "a.jsonl", events + stray)
    assert "events from 2 runs mixed" in _refused(tmp_path, capsys, run_dir)


def test_the_command_line_shows_no_traceback_on_a_bad_record(tmp_path: Path) -> None:
    """The real process: one line on stderr, exit status 2."""
    run_dir = tmp_path / "run"
    write_events(run_dir / "events" / "a.jsonl", history(), tail="{")
    proc = subprocess.run(
        [sys.executable, "-m", "semichat", "check", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "truncated JSON line" in proc.stderr
