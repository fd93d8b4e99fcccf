"""The plain-Python parts of the harness: views, knobs, recording, run directories, costs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from semichat.harness.checker import check
from semichat.harness.events import read_events
from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.loadgen.recorder import Recorder
from semichat.harness.loadgen.view import (
    CATCH_UP_FIRST_PAGE,
    CATCH_UP_PAGE,
    MAX_CATCH_UP_PAGES,
    ChatView,
    catch_up,
    catch_up_limit,
    idempotency_key,
    message_text,
    record_views,
)
from semichat.harness.report import sqs_cost, summary_table
from semichat.harness.simulate import run_directory


def test_view_shows_each_message_once_in_server_order() -> None:
    view = ChatView()
    assert view.merge([{"messageId": "a"}, {"messageId": "b"}]) == ["a", "b"]
    assert view.merge([{"messageId": "b"}, {"messageId": "c"}, {"messageId": "a"}]) == ["c"]
    assert view.messages == ["a", "b", "c"]
    assert "c" in view and "z" not in view


class _History:
    """A conversation's history as the server pages it: the newest `limit` before the cursor."""

    def __init__(self, count: int) -> None:
        self.ids = [f"m{i:04}" for i in range(count)]
        self.calls: list[tuple[int, str | None]] = []

    def add(self, count: int) -> None:
        self.ids += [f"m{i:04}" for i in range(len(self.ids), len(self.ids) + count)]

    def insert(self, newer: int, message_id: str) -> None:
        """A message that sorts behind the `newer` newest ones: a send that committed late."""
        self.ids.insert(len(self.ids) - newer, message_id)

    def fetch(self, limit: int, cursor: str | None) -> dict[str, Any]:
        self.calls.append((limit, cursor))
        end = int(cursor) if cursor else len(self.ids)
        start = max(0, end - limit)
        page = [{"messageId": m} for m in self.ids[start:end]]
        return {"messages": page, "nextCursor": str(start) if start else None}


def test_catching_up_pages_back_to_a_shown_message_as_the_widget_does() -> None:
    history, view = _History(100), ChatView()
    shown: list[int] = []
    assert catch_up(history.fetch, view, False, lambda page: shown.append(len(view.merge(page))))
    assert history.calls == [(50, None)] and shown == [50]
    # 40 new: a page of 5, then pages of 20, 40, ... back until one reaches a message shown.
    history.add(40)
    history.calls.clear()
    assert catch_up(history.fetch, view, True, lambda page: shown.append(len(view.merge(page))))
    assert history.calls == [(5, None), (20, "135"), (40, "115")]
    # Shown together once the last page joins what was shown, oldest first: page by page, the
    # newest 5 would have stood above a gap of 35 for the time of two more reads.
    assert shown[1:] == [40] and view.messages[-40:] == history.ids[-40:]
    # Nothing new: the page of 5 alone.
    history.calls.clear()
    catch_up(history.fetch, view, True, view.merge)
    assert history.calls == [(5, None)]
    # A long gap: pages grow to the server's maximum, so 500 missed take six reads.
    history.add(500)
    history.calls.clear()
    catch_up(history.fetch, view, True, view.merge)
    assert [limit for limit, _ in history.calls] == [5, 20, 40, 80, 160, 200]
    assert len(view) == 90 + 500 and view.messages == history.ids[50:]
    # Far behind: at most twenty pages; a refused read leaves the state as it was.
    history.add(5000)
    history.calls.clear()
    catch_up(history.fetch, view, True, view.merge)
    assert (
        len(history.calls) == MAX_CATCH_UP_PAGES
        and len(view) == 590 + 5 + 20 + 40 + 80 + 160 + 15 * 200
    )
    assert catch_up(lambda limit, cursor: None, ChatView(), False, view.merge) is False


def test_catching_up_pages_back_to_a_notified_message_that_sorts_behind_shown_ones() -> None:
    history, view = _History(100), ChatView()
    catch_up(history.fetch, view, False, view.merge)
    # Committed late: older than 8 messages already shown, so the first page of 5 misses it.
    history.insert(8, "late")
    history.calls.clear()
    catch_up(history.fetch, view, True, view.merge)
    assert history.calls == [(CATCH_UP_FIRST_PAGE, None)] and "late" not in view
    # Its notification names it: the catch-up pages back until it shows.
    wanted = {"late"}
    history.calls.clear()
    catch_up(history.fetch, view, True, view.merge, wanted)
    assert history.calls == [(CATCH_UP_FIRST_PAGE, None), (CATCH_UP_PAGE, "96")]
    assert "late" in view and wanted == set()

    # An id notified while a catch-up runs is left for the next one.
    def fetch_meanwhile_notified(limit: int, cursor: str | None) -> dict[str, Any]:
        wanted.add("meanwhile")
        return history.fetch(limit, cursor)

    wanted.add("late")
    catch_up(fetch_meanwhile_notified, view, True, view.merge, wanted)
    assert wanted == {"meanwhile"}
    # A refused read gives up on nothing: the next catch-up still seeks them.
    assert catch_up(lambda limit, cursor: None, view, True, view.merge, wanted)
    assert wanted == {"meanwhile"}


def test_a_notified_message_never_found_is_sought_at_most_twenty_pages_then_dropped() -> None:
    history, view = _History(5000), ChatView()
    catch_up(history.fetch, view, False, view.merge)
    history.calls.clear()
    wanted = {"ghost"}
    catch_up(history.fetch, view, True, view.merge, wanted)
    assert len(history.calls) == MAX_CATCH_UP_PAGES
    assert history.calls[0] == (CATCH_UP_FIRST_PAGE, None)
    assert [limit for limit, _ in history.calls] == [catch_up_limit(n) for n in range(20)]
    assert history.calls[1][0] == CATCH_UP_PAGE
    assert wanted == set()
    # A shorter history ends where it begins, without a nextCursor.
    history, view, wanted = _History(60), ChatView(), {"ghost"}
    catch_up(history.fetch, view, False, view.merge)
    history.calls.clear()
    catch_up(history.fetch, view, True, view.merge, wanted)
    assert history.calls == [(5, None), (20, "55"), (40, "35")] and wanted == set()


def test_the_idempotency_key_is_parsed_back_from_a_message_text() -> None:
    key = "0123456789abcdef0123456789abcdef"
    assert idempotency_key({"text": message_text("sim-w0-u1", 7, key)}) == key
    assert idempotency_key({"text": "sim-w0-u1 #7 [k-1_x]  "}) == "k-1_x"
    # Defensive: anything else carries no key.
    for message in ({"text": "hello"}, {"text": "a [b c]"}, {"text": "[k] then more"},
                    {"text": None}, {"text": 42}, {}, {"text": "u #1 []"}):  # fmt: skip
        assert idempotency_key(message) is None, message


def test_views_of_crafted_history_pages_recover_a_send_whose_response_was_lost(
    tmp_path: Path,
) -> None:
    """What a Tab records from a history page (`record_views`, through a real Recorder),
    judged by the checker from the recorded file."""
    users = ["a", "b"]
    lost_key, ok_key = "f" * 32, "e" * 32
    recorder = Recorder(tmp_path / "events")
    # a's first send timed out (outcome unknown, no messageId), yet the server stored it.
    recorder.record("send", t=1.0, user="a", conversationId="c", idempotencyKey=lost_key,
                    recipients=users, outcome="unknown", messageId=None, attempts=3)  # fmt: skip
    recorder.record("send", t=2.0, user="b", conversationId="c", idempotencyKey=ok_key,
                    recipients=users, outcome="ok", messageId="m2", ackedAt=2.1)  # fmt: skip
    page = [
        {"messageId": "m1", "text": message_text("a", 1, lost_key)},
        {"messageId": "m2", "text": message_text("b", 1, ok_key)},
        {"messageId": "m3", "text": "typed by a person"},
    ]
    for user in users:
        # The wire carries no key: the views' bridge matches m1's notifications too.
        for mid in ("m1", "m2"):
            recorder.record("notification", t=2.5, user=user, stream=f"s-{user}",
                            messageId=mid, conversationId="c")  # fmt: skip
        view = ChatView()
        args = {"t": 3.0, "user": user, "client": f"{user}/tab0", "conversation_id": "c"}
        shown = record_views(recorder, view, page, **args)
        assert [e["messageId"] for e in shown] == ["m1", "m2", "m3"]
        # A refetch of the same page shows nothing new, so records nothing.
        assert record_views(recorder, view, page, **{**args, "t": 4.0}) == []
    recorder.record("run", t=20.0, phase="end")
    recorder.close()
    r = check(read_events(tmp_path / "events"))
    for level in ("wire", "user_view"):
        assert (r[level]["recovered"], r[level]["recovered_messages"]) == (2, 1), level
    assert (r["wire"]["unexpected"], r["user_view"]["unexpected"]) == (0, 2)  # m3, twice


def test_load_config_round_trips_through_the_environment() -> None:
    config = LoadConfig(run_dir="/x", conversation_size=5, send_interval=0.25, tabs=3)
    assert LoadConfig.from_env(config.to_env()) == config
    assert LoadConfig.from_env({}) == LoadConfig()


def test_recorder_appends_one_json_line_per_event(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "events")
    rec.record("connect", user="u", stream="s")
    rec.record("view", t=12.5, user="u", messageId="m")
    rec.close()
    [path] = (tmp_path / "events").glob("*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["type"] for e in lines] == ["connect", "view"]
    assert lines[1]["t"] == 12.5
    assert lines[0]["t"] > 1e9


def test_run_directories_are_unique_and_latest_points_at_the_newest(tmp_path: Path) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    first = run_directory(tmp_path, "chat", now)
    second = run_directory(tmp_path, "chat", now)
    assert first != second
    assert (first / "events").is_dir()
    assert (tmp_path / "chat" / "latest").resolve() == second.resolve()


def test_sqs_cost_is_requests_per_connected_user_per_minute() -> None:
    counters = {"send": 0, "receive": 0, "delete": 0, "requests": 0, "active_polls": 3}
    metrics = {
        "before": {"time": 0.0, "sqs": counters},
        "after": {"time": 120.0, "sqs": {**counters, "receive": 30, "send": 10, "requests": 40}},
    }
    events = pd.DataFrame(
        {"type": ["connect", "connect", "connect", "send"], "user": ["a", "b", "a", "a"]}
    )
    cost = sqs_cost(metrics, events)
    assert cost["connected_users"] == 2
    assert cost["per_user_minute"] == 10.0
    assert cost["requests"]["receive"] == 30
    assert "active_polls" not in cost["requests"]


def test_summary_table_names_both_levels() -> None:
    level = {"sent": 3, "expected": 6, "delivered": 5, "lost": 1, "late": 2, "duplicated": 0,
             "reordered": 0, "unexpected": 0,
             "latency_ms": {"p50": 12.0, "p95": 30.0, "p99": 31.0, "max": 40.0}}  # fmt: skip
    text = summary_table({"wire": level, "user_view": {**level, "lost": 0}, "sends": {}})
    lost_row = next(line for line in text.splitlines() if line.startswith("lost"))
    assert lost_row.split() == ["lost", "1", "0"]
    assert "12 ms" in text
    late_row = next(line for line in text.splitlines() if line.startswith("late "))
    assert late_row.split() == ["late", "2", "2"]


_FIRST_SENDS = """
import json
from semichat.harness.loadgen import user as user_module
from semichat.harness.loadgen.config import LoadConfig
from semichat.harness.scenarios import scenario_file
import importlib.util
spec = importlib.util.spec_from_file_location("chat", scenario_file("chat"))
chat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chat)
ChatParticipant = chat.ChatParticipant

steps = []
user_module.ChatUser.on_start = lambda self: steps.append(["start", 0])
user_module.gevent.sleep = lambda s: steps.append(["sleep", s])
ChatParticipant.join_conversation = lambda self: None
ChatParticipant.open_tabs = lambda self, n: steps.append(["tabs", n])
participant = ChatParticipant.__new__(ChatParticipant)
participant.config = LoadConfig(send_interval=4.0)
runs = []
for _ in range(50):
    steps.clear()
    participant.on_start()
    runs.append(list(steps))
print(json.dumps(runs))
"""


def test_chat_users_start_sending_at_their_own_pace_not_in_one_volley() -> None:
    """Users spawn within two seconds; each first waits a random part of one send interval, so
    that 100 first sends do not land together (that volley set the 100-user run's p99).
    In a child process: importing Locust monkey-patches this one for gevent."""
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_SENDS], capture_output=True, text=True, check=True
    ).stdout
    runs = json.loads(out.splitlines()[-1])
    assert all([name for name, _ in steps] == ["start", "tabs", "sleep"] for steps in runs)
    pauses = [steps[-1][1] for steps in runs]
    assert all(0.0 <= p <= 4.0 for p in pauses)
    assert max(pauses) - min(pauses) > 1.0  # spread, not one shared delay
