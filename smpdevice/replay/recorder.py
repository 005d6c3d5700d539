"""Recording a session's frames: the tap on the link's port, started at session open.

`start_recording` is called by `TreatmentSession.open` once the session's record exists; it
writes the metadata a replay needs (profile, calibration, zones, pen, and the controller's
state at the recording's start: `smpdevice.replay.start`), the connection's preamble (the
handshake the port kept), then every byte both ways and every state change until `seal()`,
which `TreatmentSession.close` puts in the close record. The start is one point (`begin`):
the tap, the state listener and the start state are taken there, and what crosses before the
file is open is kept and written first, so nothing falls between the metadata and the tap
(review 20: a pen's reboot there was in neither). Host-side inputs (an
operator's stop, an E-stop request) go to the `/input` channel (`smpdevice.replay.inputs`).
Nothing here may stop a treatment: any failure to start is logged and the session runs
unrecorded.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.records.frames import DEFAULT_MAX_BYTES, FrameWriter, json_bytes, recording_path
from smpdevice.replay.inputs import CHANNEL as INPUT_CHANNEL
from smpdevice.replay.inputs import InputTap
from smpdevice.replay.start import controller_start, since_opening
from smpdevice.transport import TappedPort

if TYPE_CHECKING:
    from collections.abc import Callable

    from smpdevice.control import PenController, State
    from smpdevice.sessions.profiles import TreatmentProfile
    from smpdevice.sessions.screening import Screening

log = structlog.get_logger("smpdevice.replay")
# The reasons the controller gives a change to `disconnected` that no port failure caused:
# its own close (control/connection.py), and the silence it judged (link/engine.py).
CLOSED = "closed"
SILENT = "the pen has been silent for"


class SessionRecording:
    """The running recording of one session (see the module's docstring)."""

    def __init__(self, pen: PenController, port: TappedPort) -> None:
        self.pen = pen
        self.port = port
        self.writer: FrameWriter | None = None  # set once the file is open (`open_file`)
        self._early: list[tuple[str, float, bytes]] = []  # recorded before that, in order
        self._early_lock = threading.Lock()
        self._sealed: dict[str, Any] | None = None
        self._kept = 0  # entries of the port's preamble recorded (a new connection's)
        self._catch_up = threading.Lock()
        self.start: dict[str, Any] = {}  # the controller at the start (`begin`)
        self.start_s = pen.clock.now()
        self._start_lock = threading.Lock()
        self._chained = False  # a change from the start state was told: all are the session's
        self._snapshot: Any = None  # the pen's last report at the start (`begin`)
        self.inputs = InputTap(
            lambda value: self._add(INPUT_CHANNEL, pen.clock.now(), json_bytes(value)),
            lambda: pen.state.value)

    def _add(self, channel: str, t_s: float, data: bytes) -> None:
        writer = self.writer
        if writer is None:
            with self._early_lock:  # `open_file` writes these first, then sets the writer
                writer = self.writer
                if writer is None:
                    self._early.append((channel, t_s, bytes(data)))
                    return
        writer.add(channel, t_s, data)

    def _tap(self, direction: str, data: bytes) -> None:
        if len(self.port.preamble) > self._kept:  # (no lock on the way of every frame)
            self._kept_late()
        if direction == "host":  # an E-stop request is recorded before its frame
            self.inputs.on_host_bytes(data)
        self._add("/" + direction, self.pen.clock.now(), data)

    def watch_stop(self, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        """A session's `should_stop`, whose first yes is recorded as a `stop` input."""
        return self.inputs.watch(should_stop)

    def between_passes(self) -> None:
        """The session checks, between two passes, what came since (replayed at this point)."""
        self.inputs.between()

    def note_stop(self, source: str) -> None:
        """The technician's stop reached the session another way (Ctrl-C in a pass)."""
        self.inputs.stop(source)

    def _state(self, old: State, new: State, reason: str) -> None:
        with self._start_lock:
            if not self._chained:
                if old.value != self.start.get("state"):
                    return  # made before the start, told since: `start` has it already
                self._chained = True
        if new.value == "disconnected" and reason != CLOSED and old.value != "connecting":
            # lost, not closed by the host (nor a reconnect that failed: its own input's)
            self.inputs.link_lost(reason, old.value, silence=str(reason).startswith(SILENT))
        if old.value == "disconnected" and new.value == "connecting":  # `pen.reconnect()`
            self.inputs.reconnect(old.value)
        elif old.value == "connecting":  # (listeners run in the opening thread, in order)
            self._connected_anew(new.value != "disconnected")
        self._add("/state", self.pen.clock.now(),
                  json_bytes({"old": old.value, "new": new.value, "reason": str(reason)}))

    def _held_estop(self, state: State, _reason: str) -> None:
        """An E-stop requested while the link is down: no frame records it (session 21)."""
        self.inputs.held_estop(state.value)

    def _connected_anew(self, connected: bool) -> None:
        """A reconnect's attempt ended: its new port's handshake (what crossed it so far, kept
        by the port) goes on `/reconnect/*`; connected, the session's recording goes on from
        that port. No new port (it did not open): nothing crossed."""
        port = getattr(self.pen.link, "port", None)
        if not isinstance(port, TappedPort) or port is self.port:  # none opened
            return
        _connection(port)  # its handshake is this: a later part on it replays that
        now = self.pen.clock.now()
        with self._catch_up:
            kept = list(port.preamble)
            for direction, data in kept:
                self._add("/reconnect/" + direction, now, data)
            if not connected:
                return
            self.inputs.new_connection()
            self.port.set_tap(None)
            self.port, self._kept = port, len(kept)
            port.set_tap(self._tap)

    def _kept_late(self) -> None:
        """Bytes the new port kept as its tap was set (a reader that looked just before): the
        session's, recorded now, once, before the chunk whose tap found them. Written under
        the lock and counted only then: a thread that took them and was preempted before
        writing them let another thread's next chunk go first (a TELEMETRY recorded ahead of
        an earlier one replayed as a pen that rebooted); now that one waits here."""
        with self._catch_up:
            late = list(self.port.preamble)[self._kept:]
            for direction, data in late:
                if direction == "host":
                    self.inputs.on_host_bytes(data)
                self._add("/" + direction, self.pen.clock.now(), data)
            self._kept += len(late)

    def begin(self) -> dict[str, Any]:
        """The recording's start: from here every byte and state change is the session's (kept
        until the file is open). Returns the controller's state here (`start`)."""
        with _active_lock:
            _active[id(self.pen)] = self
        self.start_s = self.pen.clock.now()
        _connection(self.port)  # a connection's first session: its preamble ends here
        self._kept = len(self.port.preamble)  # what it keeps from here on is the session's
        self.port.set_tap(self._tap)
        self.pen.add_state_listener(self._state)  # a change made after this is told to it
        self.pen.held_estop_listeners.add(self._held_estop, name="recording")
        with self._start_lock:  # (one told meanwhile was made before: `_state` drops it)
            self.start = controller_start(self.pen)
        recent = list(getattr(self.pen.link, "recent_telemetry", ()))
        self._snapshot = recent[-1] if recent else None  # the counters' base, at the start
        return self.start

    def open_file(self, writer: FrameWriter) -> None:
        """The file is open: the connection's preamble, the pen's last report before the
        start (the counters' base) unless the preamble has it (a report after it there
        would then be replayed before an older one: a reboot's sign), what was recorded
        since the start, then on."""
        from firmware_protocol import encode

        with self._early_lock:
            preamble = connection_preamble(self.port)
            for direction, data in preamble:
                writer.add("/preamble/" + direction, self.start_s, data)
            # ... nor what is recorded next: bytes read as the tap was set (late, recorded by
            # the next chunk's tap) or since; else a report read just then went on before an
            # older one (a loaded machine: a replay saw a pen that rebooted)
            said = b"".join(data for direction, data in (
                *preamble, *list(self.port.preamble)[self._kept:],
                *((channel[1:], data) for channel, _t, data in self._early))
                if direction == "pen")
            snapshot = None if self._snapshot is None else encode(self._snapshot, 0)
            if snapshot is not None and snapshot not in said:
                writer.add("/pen", self.start_s, snapshot)
            for entry in self._early:
                writer.add(*entry)
            self._early.clear()
            self.writer = writer

    def abandon(self) -> None:
        """The file could not be opened: the session goes on unrecorded."""
        with _active_lock:
            if _active.get(id(self.pen)) is self:
                del _active[id(self.pen)]
        self.port.set_tap(None)
        self.pen.state_listeners.remove(self._state)
        self.pen.held_estop_listeners.remove(self._held_estop)

    def seal(self) -> dict[str, Any]:
        """Stop recording and finish the file; the record for the session's close."""
        if self._sealed is None:
            self.abandon()  # (the tap and the listener off)
            assert self.writer is not None  # (open_file came first: start_recording)
            self._sealed = self.writer.seal().as_record()
        return self._sealed


SETTLE_S = 0.25  # at most this long (controller clock) for a report that is not stale


def settled_telemetry(pen: PenController) -> Any:
    """The pen's last report, once it agrees with the controller: a session (or its resume)
    starts on an idle pen, but the last report may predate a fault just cleared (resumed on
    the same connection). A replay starts a fresh controller on it: a stale FAULT there
    would latch it. So wait (bounded) for a report of an idle pen; else the last one."""
    from firmware_protocol.codes import FirmwareState

    deadline = pen.clock.now() + SETTLE_S
    while True:
        recent = list(getattr(pen.link, "recent_telemetry", ()))
        last = recent[-1] if recent else None
        idle = last is not None and last.state == FirmwareState.IDLE and not last.faults
        if last is None or idle or pen.state.value != "idle" or pen.clock.now() >= deadline:
            return last
        pen.pause(0.005)


_active: dict[int, SessionRecording] = {}  # id(pen) -> its session's running recording
_active_lock = threading.Lock()


def note_pen_stop(pen: PenController, source: str) -> None:
    """A stop that reaches `pen` from outside its session (the service's `session.stop`, a
    lost driver: their own stop and disarm): recorded as a `pen_stop` input of the session
    being recorded on `pen`, if any, before the commands it causes. Never raises."""
    _note(pen, lambda tap: tap.pen_stop(source), "stop")


def note_disarm(pen: PenController, source: str) -> None:
    """A disarm of `pen` requested from outside its session (a client's `pen.disarm`):
    recorded as a `disarm` input of the session being recorded on `pen`, if any, right before
    its DISARM. The session's own disarms are never noted: they are its decisions. Never
    raises."""
    _note(pen, lambda tap: tap.disarm(source), "disarm")


def _note(pen: PenController, add: Callable[[InputTap], None], what: str) -> None:
    with _active_lock:
        recording = _active.get(id(pen))
    if recording is not None:
        try:
            add(recording.inputs)
        except Exception as exc:  # a recording never fails a stop or a disarm
            log.error(f"the {what} could not be recorded", error=str(exc))


# port -> (its connection's id, how many preamble entries its handshake is)
_connections: weakref.WeakKeyDictionary[TappedPort, tuple[str, int]] = weakref.WeakKeyDictionary()


def _connection(port: TappedPort) -> tuple[str, int]:
    with _active_lock:
        return _connections.setdefault(port, (uuid.uuid4().hex[:16], len(port.preamble)))


def connection_id(port: TappedPort) -> str:
    """A random id of the connection `port` is: the same for every session recorded on it
    (a resume on the same link), another for a new connection (`smp run --resume`)."""
    return _connection(port)[0]


def connection_preamble(port: TappedPort) -> list[tuple[str, bytes]]:
    """The connection's preamble as its first session found it. The port keeps what crosses
    it while no session taps it, up to its budget: between two sessions on one connection
    (a fault, its clear, a resume) that would add the pen's reports of the fault to the next
    part's "handshake", and a replay connecting on it would start on a faulted pen."""
    return list(port.preamble)[:_connection(port)[1]]


def _passes_before(passlog: Any, session_id: str, part: int) -> int | None:
    """The session's passes begun before this part: the replay gives each part its own
    (clock-free: record times come from each controller's own clock)."""
    if part <= 1:
        return 0
    try:
        return len(passlog.passes(session_id))
    except Exception as exc:  # never stops a treatment: the replay falls back on times
        log.warning("passes before this part not counted", error=str(exc))
        return None


def part_name(session_id: str, part: int) -> str:
    """The recording's name of a session's `part` (1: the session id itself, as before)."""
    return session_id if part <= 1 else f"{session_id}part{int(part)}"


def part_record(passlog_path: Path, session_id: str, part: int) -> dict[str, Any] | None:
    """The link (file, SHA-256) of a part already sealed, from its file; None without one."""
    from smpdevice.records.frames import file_sha256

    path = recording_path(Path(passlog_path), part_name(session_id, part))
    if not path.is_file():
        return None
    return {"file": path.name, "sha256": file_sha256(path), "size_bytes": path.stat().st_size,
            "part": part}


def start_recording(pen: PenController, passlog: Any, session_id: str,
                    profile: TreatmentProfile, technician: str, screening: Screening | None,
                    max_bytes: int = DEFAULT_MAX_BYTES, part: int = 1,
                    opened_on: tuple[int, int] | None = None) -> SessionRecording | None:
    """Begin recording `session_id` beside `passlog`; None (logged) when it cannot. `part`:
    1 at the session's opening, n + 1 at its n-th resume (its own file, see `part_name`).
    `opened_on`: the pen's (interruptions, stops_asked) its opening was decided on."""
    link = pen.link
    port = getattr(link, "port", None)
    if not isinstance(port, TappedPort) or not hasattr(passlog, "path"):
        log.info("session not recorded: no tapped port or no pass-log file",
                 session_id=session_id)
        return None
    try:
        path = recording_path(Path(passlog.path), part_name(session_id, part))
        sim = getattr(port.inner, "simulator", None)
        meta = {
            "session_id": session_id,
            "key_fingerprint": getattr(passlog, "key_fingerprint", None),
            "pen_serial": pen.identity.serial if pen.identity else None,
            "firmware_version": pen.identity.firmware_version if pen.identity else None,
            "port": pen.port_url,
            "simulated": pen.simulated,
            "sim_seed": getattr(sim, "seed", None),
            "lease_ms": pen.lease_ms,
            "telemetry_hz": pen.telemetry_hz,
            "technician": technician,
            "profile": profile.model_dump(mode="json"),
            "part": part,
            "footswitch": getattr(pen, "footswitch", None),  # the replay uses the same mode
            "screening": screening.as_record() if screening is not None else None,
            "calibration": (pen.calibration.model_dump(mode="json")
                            if pen.calibration is not None else None),
            "zones": {name: zone.model_dump(mode="json") for name, zone in pen.zones.items()},
            "inputs": INPUT_CHANNEL,  # host-side inputs are recorded (older recordings: none)
            "passes_before": _passes_before(passlog, session_id, part),  # splits the parts
        }
    except Exception as exc:  # the treatment goes on unrecorded
        log.error("session not recorded: the recording cannot be started",
                  session_id=session_id, error=str(exc))
        return None
    try:
        settled_telemetry(pen)  # before the start: a bounded wait for a report not stale
    except Exception as exc:  # never stops a treatment: recorded with the last report
        log.warning("no settled telemetry for the recording", error=str(exc))
    recording = SessionRecording(pen, port)
    start = recording.begin()
    try:
        if opened_on is not None:  # what came since, before the start: the replay's session
            meta["since_opening"] = since_opening(pen, opened_on)  # ends its first play() on
        meta.update({                                                  # them too
            "state": start["state"],  # at the start (before session 20: when asked)
            "start": start,  # the replay starts its controller there (replay/start.py)
            "connection": connection_id(port),  # parts on one connection share it (into-sim)
        })
        writer = FrameWriter(path, meta, start_s=recording.start_s, max_bytes=max_bytes)
    except Exception as exc:  # the treatment goes on unrecorded
        recording.abandon()
        log.error("session not recorded: the recording cannot be started",
                  session_id=session_id, error=str(exc))
        return None
    recording.open_file(writer)
    return recording
