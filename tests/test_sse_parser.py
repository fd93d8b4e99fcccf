"""The SSE parser used by non-browser clients."""

from __future__ import annotations

from semichat.harness.sse_parser import SseEvent, SseParser


def feed_all(parser: SseParser, text: str) -> list[SseEvent]:
    events = []
    for line in text.splitlines(keepends=True):
        if (e := parser.feed(line)) is not None:
            events.append(e)
    return events


def test_parses_named_events_with_ids_and_skips_heartbeats() -> None:
    parser = SseParser()
    events = feed_all(
        parser,
        "event: ready\ndata: {}\nretry: 1000\n\n: ping\n\n"
        'id: m1\nevent: message\ndata: {"messageId": "m1"}\n\n',
    )
    assert events == [
        SseEvent("ready", "{}", None, 1000),
        SseEvent("message", '{"messageId": "m1"}', "m1", None),
    ]
    assert parser.comments == 1


def test_multiline_data_and_default_event_type() -> None:
    events = feed_all(SseParser(), "data: a\r\ndata:b\r\n\r\n")
    assert events == [SseEvent("message", "a\nb", None, None)]


def test_event_without_data_is_not_dispatched_and_id_persists() -> None:
    parser = SseParser()
    assert feed_all(parser, "id: 7\nevent: x\n\n") == []
    assert feed_all(parser, "data: later\n\n") == [SseEvent("message", "later", "7", None)]


def test_bytes_lines_are_accepted() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\n") is None
    assert parser.feed(b"\n") == SseEvent("message", "x", None, None)
