"""A loopback TCP proxy that can stall streams: stop forwarding their bytes, both ways, while
keeping both connections open, as a stalled proxy or a dropped NAT entry does; or go offline:
cut every connection and refuse new ones, as a tab whose network went away.

It runs its own asyncio loop in a thread, so synchronous tests (Playwright's sync API, a
`semichat simulate` subprocess) can use it. Only connections whose latest request is the SSE
stream (`GET /api/chat/stream`) stall; history reads and sends pass, and a stream opened after
the stall passes too: the client's reconnect is what the test wants to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

STREAM_REQUEST = b"GET /api/chat/stream"
REQUEST_STARTS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ")
CHUNK = 65536


@dataclass
class Pair:
    """One client connection and its upstream connection."""

    stream: bool = False  # the latest request on it is the SSE stream
    stalled: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class StallProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.pairs: list[Pair] = []
        self.stalled_total = 0
        self.dropped_bytes = 0
        self.port = 0
        self.offline = False
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StallProxy:
        self._thread.start()
        if not self._started.wait(10):
            raise TimeoutError("the proxy did not start")
        return self

    def stall_streams(self) -> int:
        """Stall every stream open now; returns how many. They stay open and silent."""
        return int(asyncio.run_coroutine_threadsafe(self._stall(), self._loop).result(10))

    def go_offline(self) -> None:
        """A tab offline: every connection is cut and new ones are refused until `go_online`."""
        asyncio.run_coroutine_threadsafe(self._go_offline(), self._loop).result(10)

    def go_online(self) -> None:
        self.offline = False

    def open_streams(self) -> int:
        """Streams passing bytes now (open, not stalled)."""
        return sum(1 for p in list(self.pairs) if p.stream and not p.stalled and p.writers)

    def close(self) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> StallProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- inside the proxy's loop -----------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _stall(self) -> int:
        stalled = 0
        for pair in self.pairs:
            if pair.stream and not pair.stalled and pair.writers:
                pair.stalled = True
                stalled += 1
        self.stalled_total += stalled
        return stalled

    async def _go_offline(self) -> None:
        self.offline = True
        for pair in self.pairs:
            for w in pair.writers:
                w.transport.abort()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in self.pairs:
            for w in pair.writers:
                w.transport.abort()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.offline:
            client_w.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        pair = Pair(writers=[client_w, up_w])
        self.pairs.append(pair)
        try:
            await asyncio.gather(
                self._pump(client_r, up_w, pair, from_client=True),
                self._pump(up_r, client_w, pair, from_client=False),
            )
        finally:
            pair.writers.clear()
            for w in (client_w, up_w):
                w.close()
            self.pairs.remove(pair)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: Pair,
        from_client: bool,
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(CHUNK):
                if from_client and not pair.stalled and data.startswith(REQUEST_STARTS):
                    # A new request on a kept-alive connection (a body's chunk is not one).
                    pair.stream = data.startswith(STREAM_REQUEST)
                if pair.stalled:
                    # Swallowed: neither side hears of it, and neither connection closes.
                    self.dropped_bytes += len(data)
                    continue
                writer.write(data)
                await writer.drain()
        # One side closed: pass the close on, stalled or not. The stall is of bytes, not of the
        # connection's state, so the server learns when the client gives up (no zombie stream
        # left competing for the user's notifications; see docs/delivery-edges.md).
        writer.close()
