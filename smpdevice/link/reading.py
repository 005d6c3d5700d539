"""How the link reads (a mixin of `Link`): who turns the port's bytes into frames, and when.

- On a **virtual clock** there is no reader thread: `pump` reads whatever the port holds,
  whenever the clock advances and after every write.
- On a **real clock**, one reader thread reads. For a port the kernel can wait on (a serial
  port or a pty: `select` on its descriptor), a thread that waits for a reply reads the port
  itself while it waits (`wait`: the *reading role*, one thread at a time), so the reply reaches
  it without a thread hand-off, which costs more than the pty round trip itself in CPython. The
  reader thread stands by meanwhile and takes the port back `LINGER_S` after the last caller
  took it: waking a thread costs the waker 10-25 us on this kind of machine, so a request
  wakes nobody (the reader is told to stand by only when it is in `select`, at most once per
  burst of requests, and it looks for itself when to come back).
- A POSIX port is read and written on its descriptor (`RawPort`), its taps shown every byte;
  any other port through the port object (`in_waiting`, `read`), so a wrapper sees them all.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from threading import get_ident
from typing import Any

from firmware_protocol import Frame, StreamDecoder
from firmware_protocol.timing import INTER_BYTE_TIMEOUT_MS
from smpdevice.link.clock import Clock, Timebase, TimedCondition
from smpdevice.link.rawport import raw_port, read_raw

INTER_BYTE_S = INTER_BYTE_TIMEOUT_MS / 1000
IDLE_READ_S = 0.05  # the reader's longest wait: a truncated frame expires within it
# After a caller read the port, the reader thread stays out of it this long: the next request
# of a burst finds it standing by (no wake). Pen news between requests waits at most this.
LINGER_S = 0.002


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.read(fd, 512)


class LinkReading:
    """The reading half of `Link` (see the module's docstring)."""

    port: Any
    clock: Clock
    now: Callable[[], float]  # the clock's reading (Link's)
    timebase: Timebase
    decoder: StreamDecoder
    last_rx_s: float
    _closing: bool  # set once by `Link.close`; read on every request (a plain attribute)
    _lost: BaseException | None

    def _dispatch(self, frame: Frame) -> None: ...  # Link's
    def _fail(self, exc: BaseException) -> None: ...  # Link's

    def _init_reading(self) -> None:
        self._raw = None if self.timebase.virtual else raw_port(self.port)
        self._fd = None if self._raw is None else self._raw.fd
        self._reader = threading.Thread(target=self._read_loop, name="smp-link-reader",
                                        daemon=True)
        self._pump_lock = threading.Lock()
        self._pumping: threading.Thread | None = None
        self._role_lock = role_lock = threading.Lock()  # taken bare on the request path
        self._role = threading.Condition(role_lock)  # waiters for a reply, while others read
        self._standby = threading.Condition(role_lock)  # the reader thread, while a caller reads
        self._reading: threading.Thread | None = None  # who holds the reading role
        # its ident (0: nobody), set and cleared with it: "do I read?" asked without the
        # Python frame of threading.current_thread(), several times per request
        self._reading_id = 0
        self._depth = 0  # how many times it took it (a listener or handler may call in)
        self._pending: collections.deque[Frame] = collections.deque()  # decoded, undelivered
        self._role_waiters = 0
        self._poked = False  # the reading caller told the reader thread to stand by
        self._selecting = False  # the reader thread is in (or entering) its select on the port
        self._parked = False  # the reader thread waits for a caller to give the port back
        self._claimed_at = 0.0  # time.monotonic() of the last caller's claim of the port
        self.reader_pokes = 0  # times a caller had to wake the reader thread out of its select
        if self._fd is not None:
            self._wake_reader = _pipe()  # the reader leaves its select: a caller reads now
            self._wake_caller = _pipe()  # the reading caller leaves its select: look again

    def _close_reading(self, join: bool) -> None:
        self.interrupt()
        with self._role:
            self._standby.notify_all()
            if self._fd is not None:
                self._poke_reader()
        reader = self._reader
        if join and reader.is_alive() and threading.current_thread() is not reader:
            reader.join(timeout=1.0)
        self._release_pipes()

    def _release_pipes(self) -> None:
        """Once closing, and nobody selects on the wake pipes any more: give them back."""
        with self._role:
            reader = self._reader
            if (self._fd is None or not self._closing or self._reading is not None
                    or (reader.is_alive() and reader is not threading.current_thread())):
                return
            self._fd = None
            for fd in (*self._wake_reader, *self._wake_caller):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # ------------------------------------------------------------------ the reader thread

    def _read_loop(self) -> None:
        port = self.port
        try:
            if self._fd is not None:
                self._select_loop()
                return
            while not self._closing:
                # Block for one byte (up to the port timeout), then take what else is there:
                # read(4096) would wait out the whole timeout on a real port.
                data = port.read(port.in_waiting or 1)
                if data:
                    self._received(data)
                else:
                    self._expire_if_quiet()
        except Exception as exc:  # any reader failure must become an event
            if not self._closing:
                self._fail(exc)
        finally:
            self._release_pipes()

    def _select_loop(self) -> None:
        fd, (wake, _w) = self._fd or -1, self._wake_reader
        while not self._closing:
            self._stand_by()
            try:
                ready = select.select([fd, wake], [], [], IDLE_READ_S)[0]
            finally:
                self._selecting = False
            if wake in ready:
                _drain(wake)
            if self._closing or not self._take_role():
                continue
            try:
                if fd in ready:
                    self._read_ready()
                else:
                    self._expire_if_quiet()
            finally:
                self._give_role()

    def _stand_by(self) -> None:
        """Wait while a caller reads the port or took it less than `LINGER_S` ago; then say
        that this thread selects (under the lock: a caller that claims the port later pokes)."""
        with self._role:
            while not self._closing:
                left_s = self._claimed_at + LINGER_S - time.monotonic()
                if left_s > 0:  # a burst of requests: look again soon, unasked
                    self._standby.wait(left_s)
                elif self._reading is None:
                    break
                else:  # one caller holds the port long (a slow reply): it wakes us when done
                    self._parked = True  # (a thread woken every few ms starves the others
                    try:  # of the GIL on a loaded machine)
                        self._standby.wait(IDLE_READ_S)
                    finally:
                        self._parked = False
            self._selecting = True

    def _take_role(self) -> bool:
        me = threading.current_thread()
        with self._role_lock:  # the conditions' lock, without a Python-level __enter__
            if self._reading is not None and self._reading is not me:
                return False
            if self._reading is None and me is not self._reader:
                self._claimed_at = time.monotonic()
            self._reading, self._reading_id = me, get_ident()
            self._depth += 1
            return True

    def _give_role(self) -> None:
        with self._role_lock:  # the conditions' lock, without a Python-level __enter__
            self._depth -= 1
            if self._depth > 0:
                return  # an outer reader in this thread still holds it
            self._depth = 0
            self._reading, self._reading_id = None, 0
            if self._parked or self._closing:
                self._standby.notify_all()  # else it comes back by itself (LINGER_S)
            if self._role_waiters:
                self._role.notify_all()
        if self._closing:
            self._release_pipes()

    def _read_ready(self) -> None:
        if self._pending:  # left by an interrupted reader: first (one call less per reply)
            self._deliver()
        raw = self._raw
        if raw is not None:
            if self._closing:
                return  # the descriptor may be closed (and its number reused) any moment
            data = read_raw(raw)
        else:
            port = self.port
            waiting = port.in_waiting
            data = port.read(waiting) if waiting else b""
        if data:
            self._received(data)
            if self._role_waiters:  # what they wait for may be in this batch
                with self._role:
                    self._role.notify_all()

    def _received(self, data: bytes) -> None:
        self.last_rx_s = self.now()
        self._pending.extend(self.decoder.feed(data))
        self._deliver()

    def _deliver(self) -> None:
        # Frames wait in `_pending` until dispatched: a Ctrl-C in a reading caller's dispatch
        # leaves the rest for the next reader, in order (a nested reader delivers them first).
        pending = self._pending
        while pending:
            try:
                frame = pending.popleft()
            except IndexError:
                return
            self._dispatch(frame)

    def _expire_if_quiet(self) -> None:
        self._deliver()
        # The line went quiet mid-frame: give the truncated candidate up, so a reply behind it
        # is not held until the next byte comes (which may be a telemetry period away).
        if self.decoder.buffered and self.now() - self.last_rx_s >= INTER_BYTE_S:
            self._pending.extend(self.decoder.expire())
            self._deliver()

    # ------------------------------------------------------------------ waiting for a reply

    def wait(self, predicate: Callable[[], bool], timeout_s: float,
             cond: TimedCondition) -> bool:
        """Wait (clock time) until `predicate()`, which a reply makes true and `cond` hears
        of. On a selectable port this thread reads the port itself meanwhile, unless another
        waiter already does (then that one hands the reply over)."""
        if self._reading_id == get_ident():  # claimed before the request was written
            return self._read_until(predicate, self.now() + timeout_s)
        if self._fd is None or self._closing or self._lost is not None:
            with cond:
                return cond.wait_for(predicate, timeout_s)
        end_s, me = self.now() + timeout_s, threading.current_thread()
        with self._role:
            while True:
                if predicate():
                    return True
                if self._reading is None:
                    self._reading, self._reading_id = me, get_ident()
                    self._depth = 1
                    self._poked = False
                    self._claimed_at = time.monotonic()
                    break
                left_s = end_s - self.now()
                if left_s <= 0:
                    return False
                self._role_waiters += 1
                try:
                    self._role.wait(left_s)
                finally:
                    self._role_waiters -= 1
        try:
            return self._read_until(predicate, end_s)
        finally:
            self._give_role()

    def claim_reading(self) -> bool:
        """Take the reading role now, before writing a request, so that its reply is read by
        this thread (`wait`) and by no other; False if it is not to be had."""
        if self._fd is None or self._closing or not self._take_role():
            return False
        self._poked = False  # `_read_until` pokes the reader once the request is written
        return True

    def reading_depth(self) -> int:
        """How many times this thread holds the reading role now (0: it does not)."""
        return self._depth if self._reading_id == get_ident() else 0

    def release_reading(self, depth: int = 0) -> None:
        """Give back what this thread took of the reading role since it held it `depth`
        times (`reading_depth()`): an outer reader in the same thread keeps its own."""
        me = get_ident()
        while self._reading_id == me and self._depth > depth:
            self._give_role()

    def _poke_reader(self) -> None:
        self.reader_pokes += 1
        try:  # the reader thread leaves its select: stand by (not `contextlib.suppress`:
            os.write(self._wake_reader[1], b"\0")  # 3 Python calls on the E-stop's path)
        except OSError:
            return  # the link is closing: the reader ends by itself

    def stand_by_reader(self) -> None:
        """This thread holds the reading role and has just written its request: the reader
        thread leaves its select now, while the pen answers (`_read_until` does it at the
        latest; an E-stop latches the controller in between, `SafetyMixin._estop_on`)."""
        if self._reading_id == get_ident() and not self._poked \
                and self._fd is not None:
            self._poked = True
            if self._selecting:
                self._poke_reader()

    def _read_until(self, predicate: Callable[[], bool], end_s: float) -> bool:
        fd, wake = self._fd or -1, self._wake_caller[0]
        if fd < 0:
            return predicate()
        if not self._poked:  # now, while the pen answers: the reader thread stands by
            self._poked = True
            if self._selecting:  # else it sees the claim before it selects again
                self._poke_reader()
        try:
            while not predicate():
                left_s = end_s - self.now()
                if left_s <= 0 or self._closing or self._lost is not None:
                    return predicate()
                ready = select.select([fd, wake], [], [], min(left_s, IDLE_READ_S))[0]
                if wake in ready:
                    _drain(wake)
                if fd in ready:
                    self._read_ready()
                elif not ready:
                    self._expire_if_quiet()
        except Exception as exc:  # a read failure here is the link's, as in the reader
            if not self._closing:
                self._fail(exc)
            return predicate()
        return True

    def interrupt(self) -> None:
        """What a waiter waits for happened outside the reading thread: it looks again."""
        reading = self._reading
        if (reading is None or reading is self._reader or self._reading_id == get_ident()) \
                and not self._role_waiters:
            return  # the common case: the reading thread itself completed it
        with self._role:  # under the lock: the wake pipes are open while `_fd` is set
            if self._fd is not None and self._reading not in (None, self._reader):
                with contextlib.suppress(OSError):
                    os.write(self._wake_caller[1], b"\0")
            self._role.notify_all()

    # ------------------------------------------------------------------ virtual time

    def _advanced(self, now_s: float) -> None:
        self.pump()

    def pump(self) -> None:
        """Virtual clock: read and dispatch everything the port holds now (no reader thread).
        Runs in the thread that advanced the clock or wrote; never twice at once."""
        me = threading.current_thread()
        if self._pumping is me or self._closing:
            return  # a listener wrote: the outer pump reads on
        with self._pump_lock:
            self._pumping = me
            try:
                port = self.port
                while not self._closing:
                    waiting = port.in_waiting
                    if not waiting:
                        break
                    self._received(port.read(waiting))
                self._expire_if_quiet()
            except Exception as exc:  # a reader failure must become an event here too
                if not self._closing:
                    self._fail(exc)
            finally:
                self._pumping = None
