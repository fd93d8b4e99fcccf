"""`semichat serve --processes N`: N server processes on one port over one backend.

The parent resolves the backend once (with the embedded backend: starts ONE `semichat backend`
for all), then starts N children `semichat serve --supervisor-pid PID`, each binding the same
port with SO_REUSEPORT, so the kernel spreads connections among them. Settings reach the
children as `SEMICHAT_<FIELD>` variables (the secret never shows in `ps`).

Supervision: a child that exits before it serves stops the whole start (a taken port, an
unreachable backend: the same error in every child); a child that dies later is started again
after a second. On SIGTERM or SIGINT the parent sends SIGTERM to every child, waits up to
`STOP_TIMEOUT_S` for them (the `instance` strategy deletes its queue on the way out), then
kills the rest. Children watch the parent and stop if it disappears (a SIGKILL), so none is
left holding the port.
"""

from __future__ import annotations

import asyncio
import logging
import os

from semichat import ports, processes
from semichat.backends import with_backend
from semichat.server.process.serve import until_terminated
from semichat.settings import Settings, settings_env

log = logging.getLogger("semichat.supervisor")

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
RESTART_DELAY_S = 1.0


class ChildFailed(OSError):
    """A child exited before it served: the whole start fails with its reason."""


class Supervisor:
    def __init__(self, settings: Settings, log_level: str) -> None:
        self.settings = settings
        self.log_level = log_level
        self.children: list[asyncio.subprocess.Process | None] = [None] * settings.processes
        self.stopping = False

    async def start_child(self, index: int) -> asyncio.subprocess.Process:
        """Start child `index` and wait until it says it serves."""
        env = {**os.environ, **settings_env(self.settings)}
        args = ["serve", "--log-level", self.log_level, "--supervisor-pid", str(os.getpid())]
        proc, said = await processes.start_child_async(args, READY_TIMEOUT_S, env)
        self.children[index] = proc
        if said is None:
            await stop_children([proc])
            raise ChildFailed(
                f"server process {index} exited before serving (status {proc.returncode}); "
                "its log above says why"
            )
        log.info("server process %d serving", index, extra={"pid": said["pid"]})
        return proc

    async def keep(self, index: int) -> None:
        """Start child `index` again whenever it dies, until the supervisor stops."""
        while not self.stopping:
            proc = self.children[index]
            assert proc is not None
            status = await proc.wait()
            if self.stopping:
                return
            log.warning(
                "server process %d (pid %d) exited (%s); starting it again", index, proc.pid, status
            )
            await asyncio.sleep(RESTART_DELAY_S)
            try:
                await self.start_child(index)
            except ChildFailed:
                log.exception("server process %d did not come back", index)

    async def run(self) -> None:
        await asyncio.gather(*(self.start_child(i) for i in range(len(self.children))))
        log.info(
            "%d server processes on http://%s:%s/",
            len(self.children),
            self.settings.host,
            self.settings.port,
        )
        keepers = [asyncio.create_task(self.keep(i)) for i in range(len(self.children))]
        try:
            await until_terminated()
        finally:
            self.stopping = True
            for task in keepers:
                task.cancel()
            await stop_children([c for c in self.children if c is not None])


async def stop_children(children: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM each, wait (bounded), SIGKILL what is left."""
    for proc in await processes.stop_async(children, STOP_TIMEOUT_S):
        log.warning("server process %d did not stop in %.0f s; killed it", proc.pid, STOP_TIMEOUT_S)


async def supervise(settings: Settings, log_level: str) -> None:
    """Resolve the backend once (starting the embedded one if needed), then run the children
    over it; the backend stops after them."""
    # Held for the supervisor's life: every child, first start or restart, binds beside it,
    # and no other process can take the port meanwhile (a port chosen and let go could be).
    try:
        held = ports.reserve(settings.host, settings.port)
    except OSError as exc:
        raise OSError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; "
            "is another server there? choose another --port"
        ) from None
    with held:
        settings = settings.with_overrides(port=ports.port_of(held))
        async with with_backend(settings) as resolved:
            await Supervisor(resolved, log_level).run()
