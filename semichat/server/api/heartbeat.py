"""The stream's heartbeat as an event clients can see, and the `stall` fault at the writer.

aiohttp-sse pings with SSE comments (`: ping`), which `EventSource` swallows: a browser cannot
tell a stream that went silent without closing (a NAT entry dropped, a proxy that stalls) from a
quiet one. Here the heartbeat is a named event, `event: heartbeat` with `data: {}`, every
`heartbeat_seconds`, the interval the `ready` event states; clients that hear nothing for about
two intervals close the stream and reconnect (widget.js `STALL_INTERVALS`, the simulated
client's `Tab`).

Dead connections on the server's side: every write (heartbeat or notification) must finish
within `SEND_TIMEOUT_S`, and on Linux the socket's `TCP_USER_TIMEOUT` is set to the same, so
the kernel aborts a connection whose sent bytes stay unacknowledged that long; either ends the
stream (aiohttp-sse's `send_timeout`). A peer that vanished is therefore found within one
heartbeat interval plus `SEND_TIMEOUT_S`; one that closes cleanly, at once.
"""

from __future__ import annotations

import asyncio

from aiohttp_sse import EventSourceResponse

HEARTBEAT_EVENT = "heartbeat"
# aiohttp-sse's default is 120 s. Shorter, because a stream whose peer vanished (a NAT entry
# dropped) still holds the user's long poll meanwhile, and with one queue per user it takes
# notifications from the user's live stream: 30 s bounds that to heartbeat + 30 s.
SEND_TIMEOUT_S = 30.0


class HeartbeatResponse(EventSourceResponse):
    """An SSE response whose pings are `heartbeat` events. `stall()` makes it stop forwarding
    bytes while the connection stays open, as a stalled proxy does (fault `stall=P`): what is
    sent after it is dropped as if written."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("send_timeout", SEND_TIMEOUT_S)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.stalled = False

    def stall(self) -> None:
        self.stalled = True

    async def send(
        self,
        data: str,
        id: str | None = None,
        event: str | None = None,
        retry: int | None = None,
    ) -> None:
        if self.stalled:
            return
        await super().send(data, id=id, event=event, retry=retry)

    async def _ping(self) -> None:
        # Overrides aiohttp-sse 3.0's comment ping (a private method, as are the fields used
        # here: tests/test_heartbeat.py checks they exist) with the same loop and the same cost:
        # one prebuilt write per interval, which 10,000 streams make every 10 s. Ending this
        # task is what `wait()` reports as closed.
        message = f"event: {HEARTBEAT_EVENT}{self._sep}data: {{}}{self._sep}{self._sep}".encode()
        while True:
            await asyncio.sleep(self._ping_interval)
            if self.stalled:
                continue
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self.write(message)
            except TimeoutError:
                self._abort_transport()  # a stalled peer never drains: do not wait on it
                break
            except (ConnectionResetError, RuntimeError):
                break  # RuntimeError: writing after EOF
