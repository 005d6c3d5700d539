"""`smp serve`'s SIGTERM handler: the first SIGTERM stops the service; a second one, while it
closes (an impatient supervisor), must not cut that close short: the close is what stops and
disarms the pen and closes its port (else only the pen's own lease stops it, fault latched)."""

from __future__ import annotations

import asyncio
import contextlib

from smpdevice.service.command import cancel_once


def test_a_second_sigterm_does_not_cut_the_close_short():
    async def main() -> tuple[bool, bool]:
        closing, may_end, closed = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def serve_forever() -> None:
            try:
                await asyncio.Event().wait()
            finally:  # the close: stop, disarm, close the port
                closing.set()
                await may_end.wait()
                closed.set()

        task = asyncio.ensure_future(serve_forever())
        await asyncio.sleep(0)
        on_sigterm = cancel_once(task)
        on_sigterm()
        await closing.wait()
        on_sigterm()  # again, mid-close
        await asyncio.sleep(0)
        may_end.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return closed.is_set(), task.cancelled()

    closed, cancelled = asyncio.run(main())
    assert closed, "the second SIGTERM cut the close short"
    assert cancelled  # the first one did stop the service
