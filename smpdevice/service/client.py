"""Clients of `smp serve`: asyncio (`ServiceClient`) and a thin synchronous wrapper.

    async with await ServiceClient.connect() as svc:        # SMP_SERVICE or the local socket
        print(await svc.call("pen.state"))
        await svc.drive(lease_ms=1000)                      # heartbeats run in the background
        await svc.call("pen.set_zone", zone="crown")
        ...
        await svc.estop()

    with SyncServiceClient.connect("ws://127.0.0.1:8765/rpc") as svc:
        svc.call("pen.state")

Where: an explicit URL (`ws://`, `wss://` or `unix:///path/service.sock`), else `$SMP_SERVICE`,
else the Unix socket in the data directory. The token is read from the token file in the data
directory unless given.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from smpdevice.service.auth import Role, read_token
from smpdevice.service.client_waits import wait_answer as _wait
from smpdevice.service.client_wire import MAX_INT as MAX_INT
from smpdevice.service.client_wire import RPC_PATH as RPC_PATH
from smpdevice.service.client_wire import ServiceError as ServiceError
from smpdevice.service.client_wire import ServiceGone as ServiceGone
from smpdevice.service.client_wire import _closed_why, _open
from smpdevice.service.client_wire import encode_request as encode_request
from smpdevice.service.client_wire import service_url as service_url
from smpdevice.service.limits import BUSY, RATE_LIMITED

CALL_TIMEOUT_S = 60.0
NOT_REFUSALS = (RATE_LIMITED, BUSY)  # "not now", not "no": a heartbeat that gets one beats on


class ServiceClient:
    """One authenticated connection to the service."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.role: Role | None = None
        self.client_id: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1024)
        self._kept: collections.deque[dict[str, Any]] = collections.deque()  # see `_take`
        self._reader = asyncio.ensure_future(self._read())
        self._heartbeat: asyncio.Task | None = None
        self.closed_reason: str | None = None

    @classmethod
    async def connect(cls, url: str | None = None, *, token: str | None = None,
                      role: Role | str = Role.OPERATOR, data_dir: Path | None = None,
                      name: str = "python") -> ServiceClient:
        role = role if isinstance(role, Role) else Role.parse(role)
        if token is None:
            from smpdevice.paths import data_dir as default_dir

            token = read_token(Path(data_dir) if data_dir else default_dir(), role)
        client = cls(await _open(service_url(url)))
        try:
            hello = await client.call("rpc.hello", token=token, role=role.label, client=name)
        except BaseException:
            await client.close()
            raise
        client.role, client.client_id = Role.parse(hello["role"]), hello["client_id"]
        return client

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                ident = message.get("id")
                if "method" in message:
                    if self._queue.full():
                        self._queue.get_nowait()  # a slow reader loses the oldest
                    self._queue.put_nowait(message)
                elif isinstance(ident, int) and ident in self._pending:
                    future = self._pending.pop(ident)
                    if not future.done():
                        future.set_result(message)
                elif ident is None and "error" in message:
                    self.closed_reason = message["error"].get("message")
        except ConnectionClosed:
            pass
        finally:
            self.closed_reason = self.closed_reason or _closed_why(self.ws)
            error = ServiceGone(self.closed_reason)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()

    async def call(self, method: str, timeout_s: float = CALL_TIMEOUT_S, **params: Any) -> Any:
        """Call `method`; its result, or ServiceError with the service's code and message."""
        if self._reader.done():
            raise ServiceGone(self.closed_reason)
        ident = next(self._ids)
        text = encode_request(ident, method, params)  # before anything waits for an answer
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            await self.ws.send(text)
        except ConnectionClosed:  # closed between the check above and the send
            self._pending.pop(ident, None)
            raise ServiceGone(self.closed_reason or _closed_why(self.ws)) from None
        try:
            message = await _wait_for(future, timeout_s)
        except TimeoutError:
            self._pending.pop(ident, None)
            raise ServiceError(f"{method}: no answer from the service within {timeout_s} s"
                               ) from None
        if "error" in message:
            e = message["error"]
            raise ServiceError(_prefixed(method, e.get("message")), e.get("code"), e.get("data"))
        return message["result"]

    async def notifications(self) -> AsyncIterator[dict[str, Any]]:
        """Notifications (method, params) in arrival order."""
        while True:
            yield self._kept.popleft() if self._kept else await self._queue.get()

    async def next_notification(self, method: str, timeout_s: float = 30.0,
                                where: Any = None) -> dict[str, Any]:
        """Wait for the next notification `method` (whose params satisfy `where`)."""
        async def find() -> dict[str, Any]:
            async for n in self.notifications():
                if n["method"] == method and (where is None or where(n["params"])):
                    return n["params"]
            raise AssertionError("unreachable")
        return await _wait_for(find(), timeout_s)

    async def next_event(self, methods: frozenset[str] | set[str], timeout_s: float = 30.0
                         ) -> tuple[str, dict[str, Any]]:
        """The next notification whose method is one of `methods`, as (method, params); the
        others are dropped. ServiceError when the connection closes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if not self._kept and self._queue.empty() and self._reader.done():
                raise ServiceGone(self.closed_reason)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {'/'.join(sorted(methods))} within {timeout_s} s")
            n = await self._take(min(left, 0.5))
            if n is not None and n["method"] in methods:
                return n["method"], n["params"]

    def keep(self, notification: dict[str, Any]) -> None:  # loop: a left caller's, the next
        self._kept.appendleft(notification)

    async def _take(self, timeout_s: float) -> dict[str, Any] | None:
        """The next notification within `timeout_s`, or None. One taken just as the wait is
        cancelled is kept for the next wait (asyncio.wait_for dropped it: review 18)."""
        if self._kept:
            return self._kept.popleft()
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({getter}, timeout=timeout_s)
        finally:  # a notification taken meanwhile is kept; else the get is cancelled (its
            if not getter.done():  # item stays queued: Queue.get takes it only as it ends)
                getter.cancel()
            elif not getter.cancelled() and getter.exception() is None:
                self._kept.append(getter.result())
        return self._kept.popleft() if self._kept else None

    async def estop(self) -> dict[str, Any]:
        return await self.call("pen.estop")

    async def drive(self, lease_ms: int = 1000) -> dict[str, Any]:
        """Become the driving client and keep its lease with heartbeats (every lease/4)."""
        result = await self.call("pen.drive", lease_ms=lease_ms)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat(lease_ms / 4000))
        return result

    async def _beat(self, every_s: float) -> None:
        me = asyncio.current_task()
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(every_s)
                if self._heartbeat is not me:  # stop_heartbeats() forgot it (a cancel lost)
                    return
                try:
                    await self.call("pen.heartbeat", timeout_s=max(1.0, every_s * 3))
                except ServiceError as exc:
                    if self._reader.done() or exc.code not in (None, *NOT_REFUSALS):
                        return  # refused (no longer the driver), or the connection is gone
                    # Late (a busy service, a slow PC) or rate limited (a burst of other
                    # calls): beat on. The service's lease decides whether this client still
                    # drives, not one slow or throttled answer.

    def stop_heartbeats(self) -> None:
        """Stop renewing (a hung client, for tests and demonstrations)."""
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()

    async def release(self, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.stop_heartbeats()
        await self.call("pen.release", timeout_s)

    async def close(self) -> None:
        self.stop_heartbeats()
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


async def _wait_for(awaitable: Any, timeout_s: float) -> Any:
    """`asyncio.wait_for` that never swallows a cancel. Python 3.11's returns the answer when
    the task is cancelled just as it arrives, and the task runs on as if never cancelled: a
    heartbeat loop stopped at that moment would beat forever (and its driver never lapse)."""
    result = await asyncio.wait_for(awaitable, timeout_s)
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    return result


class SyncServiceClient:
    """The asyncio client on a private event loop thread, with blocking methods."""

    def __init__(self, client: ServiceClient, loop: asyncio.AbstractEventLoop,
                 thread: threading.Thread) -> None:
        self._client, self._loop, self._thread = client, loop, thread
        self._closed = False
        # An event a wait had already taken when Ctrl-C cut it short: the next wait's.
        self._held: tuple[str, dict[str, Any]] | None = None

    @classmethod
    def connect(cls, url: str | None = None, **kwargs: Any) -> SyncServiceClient:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="smp-service-client",
                                  daemon=True)
        thread.start()
        try:
            client = _wait(asyncio.run_coroutine_threadsafe(
                ServiceClient.connect(url, **kwargs), loop), CALL_TIMEOUT_S + 5,
                f"connecting to the service at {service_url(url)}")
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            raise
        return cls(client, loop, thread)

    def _run(self, coro: Any, timeout_s: float = CALL_TIMEOUT_S + 5) -> Any:
        if self._closed:  # its loop is stopped: nothing would ever answer
            coro.close()
            raise ServiceGone("closed by this client")
        return _wait(asyncio.run_coroutine_threadsafe(coro, self._loop), timeout_s,
                     "the service")

    @property
    def role(self) -> Role | None:
        return self._client.role

    @property
    def client_id(self) -> str | None:
        return self._client.client_id

    def call(self, method: str, **params: Any) -> Any:
        return self.answer(self.submit(method, **params))

    def submit(self, method: str, **params: Any) -> concurrent.futures.Future:
        """Send `method` and return at once; `answer()` waits for its answer. A wait cut short
        (Ctrl-C) does not take the request back: the service may act on it all the same, and
        `answer()` can still be asked what it did."""
        if self._closed:
            raise ServiceGone("closed by this client")
        return asyncio.run_coroutine_threadsafe(self._client.call(method, **params), self._loop)

    def answer(self, future: concurrent.futures.Future,
               timeout_s: float = CALL_TIMEOUT_S + 5) -> Any:
        return _wait(future, timeout_s, "the service", keep=True)

    def estop(self) -> dict[str, Any]:
        return self._run(self._client.estop())

    def drive(self, lease_ms: int = 1000) -> dict[str, Any]:
        return self._run(self._client.drive(lease_ms))

    def release(self, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._run(self._client.release(timeout_s), timeout_s + 1)

    def next_notification(self, method: str, timeout_s: float = 30.0, where: Any = None
                          ) -> dict[str, Any]:
        return self._run(self._client.next_notification(method, timeout_s, where),
                         timeout_s + 5)

    def next_event(self, methods: frozenset[str] | set[str], timeout_s: float = 30.0
                   ) -> tuple[str, dict[str, Any]]:
        """As the asyncio client's. A wait cut short (Ctrl-C) keeps the event it took for the
        next wait, taken just before (review 13, F3) or after, by a wait left running on the
        loop (a Ctrl-C before it could be cancelled lost a session.result: review 18)."""
        held, self._held = self._held, None
        if held is not None and held[0] in methods:  # else dropped, as next_event drops it
            return held
        if self._closed:
            raise ServiceGone("closed by this client")
        lock, taken, gone = threading.Lock(), [], [False]

        async def take() -> tuple[str, dict[str, Any]]:  # on the loop
            event = await self._client.next_event(methods, timeout_s)
            with lock:
                if gone[0]:  # its caller left: the next wait's (`ServiceClient._take`)
                    self._client.keep({"method": event[0], "params": event[1]})
                else:
                    taken.append(event)
            return event

        try:
            return _wait(asyncio.run_coroutine_threadsafe(take(), self._loop), timeout_s + 5,
                         "the service")
        except BaseException:
            with lock:
                gone[0] = True
                if taken:  # taken before the cut: this client's next wait's
                    self._held = taken[0]
            raise

    def close(self, timeout_s: float = 15) -> None:
        """Close the connection (waiting up to `timeout_s` for the service's close; a silent
        service is left behind), then end every task still on the loop: none is left to be
        "destroyed but pending" at exit. Once closed, every call raises ServiceGone at once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            _wait(asyncio.run_coroutine_threadsafe(self._client.close(), self._loop),
                  timeout_s, "closing")
        with contextlib.suppress(Exception):
            _wait(asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self._loop), 2,
                  "closing")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> SyncServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _cancel_the_rest() -> None:
    me = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not me]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=1)


def _prefixed(method: str, message: object) -> str:
    """The service's message, naming the method once: its schema refusals already begin with
    it ("session.run: technician: ..."), its other errors do not."""
    text = str(message)
    return text if text.startswith(f"{method}:") else f"{method}: {text}"
