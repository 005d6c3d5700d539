"""Long work the service runs for a driving client: a treatment session, a calibration.

A session is checked in this order before anything reaches the pen: the profile (against
this pen's envelope and hard limits), the screening, the caller is the driving client, the
pen is idle with a valid calibration. It then plays in a thread of its own and reports by
notifications (`session.progress`, `session.pass`, `session.result`). It stops before the next
pass, and stops the needle, as soon as its driving client is lost (`should_stop`); asked to
leave it open (`leave_open`), it then stays open to be resumed, as after a host crash. The
playing of an open session and its result: `SessionPlay` (session_play.py).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.errors import SmpError
from smpdevice.loader import LoadError, load_bytes
from smpdevice.service.quick_pass import shortened
from smpdevice.service.session_gate import SessionGate
from smpdevice.service.session_gate import SessionStopped as SessionStopped
from smpdevice.service.session_play import PROGRESS_EVERY_S as PROGRESS_EVERY_S
from smpdevice.service.session_play import SessionPlay

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService
    from smpdevice.service.session_gate import Receipt

log = structlog.get_logger("smpdevice.service")
# After session.stop, how long the session may take to stop its own needle (it looks every
# 20 ms) before the service stops and disarms the pen itself.
SELF_STOP_S = 0.25
# How long session.run/resume waits for the session to open (checks, log, records) before it
# answers without an id (the session goes on; session.result still comes).
OPEN_WAIT_S = 60.0


def _open_log(path: Any, pen_serial: str) -> Any:
    """The station's pass log; while another process writes it (another chair's `smp run` or
    service), this pen's own log beside it, which `smp sessions` reads with the rest."""
    from smpdevice.passlog import PassLog
    from smpdevice.paths import pen_log_name
    from smpdevice.records.sqlite_schema import PassLogInUse

    try:
        return PassLog.open(path)
    except PassLogInUse:
        return PassLog.open(Path(path).with_name(pen_log_name(pen_serial)))


def reached_at(client: Any) -> str | None:
    """The URL `client` (a connection.Client) reached this service at: `unix://` and the
    socket's path, or `ws[s]://` and the Host it asked for; None if that is unknown."""
    from smpdevice.service.client_wire import RPC_PATH

    ws: Any = getattr(client, "ws", None)  # a websockets ServerConnection
    try:
        if str(getattr(client, "id", "")).startswith("unix-"):
            where = ws.local_address
            return f"unix://{where}" if isinstance(where, str) and where else None
        host = ws.request.headers.get("Host")
        tls = ws.transport.get_extra_info("ssl_object") is not None
    except (AttributeError, OSError):
        return None
    if not isinstance(host, str) or not _HOST.fullmatch(host):
        return None
    return f"{'wss' if tls else 'ws'}://{host}{RPC_PATH}"


# a Host header as a client may send it: name or address, optional port (nothing to quote)
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


class SessionBusy(SmpError):
    """A session runs (or is being resumed) on this pen already: one at a time."""


class SessionWork(SessionPlay, SessionGate):
    def __init__(self, service: PenService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_asked = threading.Event()  # a client's session.stop: close, do not leave open
        # Stops so far (session.stop, E-stop, the service's close: request_stop); with the
        # pen's own interruptions (fault, E-stop, lost pen) a session.run or .resume received
        # before one never opens, not after a clear or reconnect (`stops_asked`, review 19).
        self._stops = 0
        self._stop_why, self._why_at = "session.stop", 0  # the latest stop's, for the refusal
        self._driver_lost = threading.Event()  # its driving client went without asking a stop
        self._stop_cause: str | None = None  # why the service stopped it (its pass's detail)
        self._closing = False  # session.close at work: no session may start meanwhile
        self._leave_open = False  # the running session's: may it be left open (resumable)?
        self._status: dict[str, Any] | None = None

    # ------------------------------------------------------------------ checks

    def parse_profile(self, text: str, fmt: str) -> Any:
        from smpdevice.sessions.profiles import ProfileError, ProfileIssue, parse_profile

        pen = self.service.pen
        try:
            data = load_bytes(text, source="uploaded profile", kind=fmt)
        except LoadError as exc:
            where = f"line {exc.line}: " if exc.line is not None else ""
            raise ProfileError([ProfileIssue("", None, f"{where}{exc.problem}; {exc.hint}",
                                             missing=True)], "uploaded") from None
        return parse_profile(data, pen.zones, pen_limits=pen.pen_limits(), source="uploaded")

    def check(self, text: str, fmt: str) -> dict[str, Any]:
        from smpdevice.sessions.profiles import ProfileError

        try:
            profile = self.parse_profile(text, fmt)
        except ProfileError as exc:
            return {"ok": False, "issues": [i.as_dict() for i in exc.issues][:50],
                    "message": str(exc)[:2000]}
        return {"ok": True, "issues": [], "client_ref": profile.client_ref,
                "session_kind": profile.session_kind.value,
                "passes": [p.model_dump() for p in profile.plan],
                "zones": {k: v.model_dump() for k, v in profile.zones.items()}}

    def _join_finished(self) -> None:
        """A session whose result is out may still be leaving its thread: wait for that."""
        thread = self._thread
        if thread is not None and not (self.status() or {}).get("running", True):
            thread.join(OPEN_WAIT_S)

    def _require_free(self) -> None:
        """SessionBusy while a session runs, is being opened or resumed, or closed (under the
        lock). A client may answer it by waiting for session.result and calling again."""
        if self._closing or (self._thread is not None and self._thread.is_alive()):
            raise SessionBusy("a session is already running on this pen (or being resumed or "
                              "closed); wait for its session.result (or call session.stop), "
                              "then call again")

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """No session runs, and none may start, inside (session.close). As session.resume, it
        first waits for a session whose result is out to leave its thread, so a client may
        close a session as soon as it reads session.result."""
        self._join_finished()
        with self._lock:
            self._require_free()
            self._closing = True
        try:
            yield
        finally:
            with self._lock:
                self._closing = False

    def busy(self) -> bool:
        """Whether a session runs (or is being opened or resumed) on this pen now."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def install_newest_if_free(self) -> None:
        """The store's newest calibration installed (`install_newest`, or its refusal), only
        while no session runs or is being opened: under the lock a launch takes, so a refused
        second session.run never swaps the calibration under a playing one (review 20)."""
        from smpdevice.service.session_gate import install_newest

        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                install_newest(self.service)

    def status(self) -> dict[str, Any] | None:
        with self._lock:
            return dict(self._status) if self._status else None

    # ------------------------------------------------------------------ sessions

    def start(self, client_id: str, p: dict[str, Any],
              stops_seen: Receipt | None = None) -> dict[str, Any]:
        from smpdevice.control.calibration import require_calibration
        from smpdevice.sessions.preflight import reached_by
        from smpdevice.sessions.screening import parse_screening

        epoch = self.service.lease.epoch  # the claim as the request arrived (launch looks
        # again): a lease lost and taken again while the profile is parsed is another claim
        profile = self.parse_profile(p["profile"], p.get("format", "yaml"))  # first
        if "quick_pass_s" in p:  # only ever shorter, checked again
            profile = shortened(profile, p["quick_pass_s"], self.service.pen)
        screening = parse_screening(p["screening"], source="screening form")
        screening.require_clear()
        service, pen = self.service, self.service.pen
        service.lease.require(client_id)
        pen.require_footswitch()  # a pen the station's footswitch mode cannot run (pedal_gate)
        reach = self.reach(client_id)
        with reached_by(*reach):  # "calibrate it first: smp calibrate --service URL"
            self.install_newest_if_free()  # as `smp run` does: the store's newest
            require_calibration(pen.calibration, pen.serial)

        def open_session(before_record: Any) -> tuple[Any, Any]:
            from smpdevice.sessions.session import TreatmentSession

            passlog = _open_log(service.passlog_path, pen.serial)
            try:
                with reached_by(*reach):  # "clear it: smp clear --service URL"
                    return passlog, TreatmentSession.open(pen, passlog, profile,
                                                          technician=p["technician"],
                                                          screening=screening,
                                                          before_record=before_record)
            except BaseException:
                passlog.close()
                raise

        return self.launch(client_id, open_session, leave_open=bool(p.get("leave_open")),
                           stops_seen=stops_seen, epoch=epoch)

    def reach(self, client_id: str) -> tuple[str, str]:
        """How the client `client_id` reaches this pen, for the commands printed to it:
        `--service` and the URL it connected to (its pen port would reach another pen or,
        held by this service, none)."""
        return ("--service", reached_at(self.service.clients.get(client_id)) or "URL")

    def launch(self, client_id: str, open_session: Any, *, leave_open: bool,
               stops_seen: Receipt | None = None, epoch: int | None = None) -> dict[str, Any]:
        """Run `open_session(before_record) -> (passlog, session)` and then play the session,
        in the one session thread (refused while another session runs or is being resumed);
        answer once it is open (or its opening's error). `leave_open`: a session ended by a
        fault, an E-stop, a lost pen or the pedal stays open, to be resumed (else closed).
        `stops_seen`: what the request was received at (`received()`); a stop or the pen's
        interruption since then wins (refused, nothing opened), as does a latch or loss it was
        received under and cleared since, as pen.stop wins over the pen.starts before it: looked
        at here and again by `before_record` (open_session calls it after its checks, right
        before its first record). `epoch`: the lease's when the request arrived (before its
        profile was parsed; else now): its caller must still drive under that claim, here and
        in `before_record` (NotDriving, nothing opened: a request of a connection gone
        meanwhile opens nothing)."""
        lease = self.service.lease
        epoch = lease.epoch if epoch is None else epoch
        self._join_finished()
        with self._lock:
            self._require_free()
            self._refuse_if_stopped(stops_seen)
            self._require_driver(client_id, epoch)
            self._stop.clear()
            self._stop_asked.clear()
            self._driver_lost.clear()
            self._stop_cause = None
            self._leave_open = leave_open
            # Being opened counts as running: a call meanwhile is refused at once (SessionBusy),
            # never made to wait as for a session that has ended (_join_finished).
            self._status = {"session_id": None, "running": True, "client": client_id}
            opened = threading.Event()
            box: dict[str, Any] = {}

            def before_record() -> None:  # its checks done, its first record next: a stop
                with self._lock:          # received meanwhile still refuses it (nothing opened)
                    self._refuse_if_stopped(stops_seen)
                    self._require_driver(client_id, epoch)  # as does its driver's loss

            self._thread = threading.Thread(
                target=self._run,
                args=(client_id, epoch, open_session, before_record, opened, box),
                name="smp-service-session", daemon=True)
            self._thread.start()
        opened.wait(OPEN_WAIT_S)
        with self._lock:  # the session thread decides under the same lock: one outcome
            if "error" in box:
                raise box["error"]
            if "answer" in box:
                return dict(box["answer"])  # always session_id, planned_passes, passes_left
            box["abandoned"] = True
            self._stop.set()  # it plays nothing once open: nobody follows it
        raise SessionBusy(f"the session was not open after {OPEN_WAIT_S:g} s (the pen or the "
                          "pass log is slow); it plays nothing: wait for its session.result "
                          "(sessions.list shows it), then call again")

    def _require_driver(self, client_id: str, epoch: int) -> None:
        """NotDriving unless `client_id` drives still, under the claim of `epoch` (a re-claim
        after its lease ran out, or its connection's loss, is not the claim it asked under)."""
        from smpdevice.service.deadman import NotDriving

        lease = self.service.lease
        lease.require(client_id)  # NotDriving, saying why
        if lease.epoch != epoch:
            raise NotDriving("the session was not opened: this connection lost the drive "
                             "after this request (its lease ran out); the needle was "
                             "stopped. Call pen.drive, then send it again")

    def _run(self, client_id: str, epoch: int, open_session: Any, before_record: Any,
             opened: threading.Event, box: dict[str, Any]) -> None:
        try:
            passlog, session = open_session(before_record)
        except BaseException as exc:
            with self._lock:
                box["error"] = exc
                self._status = None  # nothing was opened
            opened.set()
            if box.get("abandoned"):  # launch answered already: say it here at least
                log.warning("session not opened", error=str(exc))
            return
        out: dict[str, Any] = {}
        try:
            with passlog:
                sid = session.session_id
                planned = len(session.profile.plan)
                with self._lock:
                    if not box.get("abandoned"):  # else launch answered already: no answer
                        box["answer"] = {"session_id": sid, "planned_passes": planned,
                                         "passes_left": [i for i, _ in session.remaining],
                                         # a resume's: a crashed pass's part that may repeat
                                         "notes": list(session.resume_notes)}
                    self._status = {"session_id": sid, "planned_passes": planned,
                                    "running": True, "client": client_id}
                opened.set()
                self._play(session, sid, client_id, epoch, out)  # the request's claim
        finally:
            # Said once the log is closed (its writer lock free): a client may resume or close
            # the session as soon as it reads this.
            if "result" in out:
                log.info("session result", session_id=sid, outcome=out["result"]["outcome"])
                self.service.broadcast_threadsafe("session.result", out["result"])

    def request_stop(self, asked: bool = False, cause: str | None = None) -> None:
        """Stop the running session before its next pass. `asked`: a client's session.stop
        (the session is then closed as interrupted); else an E-stop or the service closing
        (with `leave_open`, such a session is left open, to be resumed). `cause`: what the
        pass it stops says ("the service is shutting down"), the first one given."""
        with self._lock:  # counted and set together: launch() looks under the same lock
            self._stops += 1  # any stop (an E-stop too) wins over the runs received before it
            self._stop_why = "session.stop" if asked else f"a stop ({cause or 'E-stop'})"
            self._why_at = self.service.pen.interruptions
            if asked:
                self._stop_asked.set()
            if cause is not None and self._stop_cause is None and not self._stop.is_set():
                self._stop_cause = cause
            self._stop.set()

    def stopped_itself(self) -> bool:
        """After request_stop(): whether a running session stopped its own needle within
        SELF_STOP_S (it then records the pass, closes and disarms: one actor on the pen, so
        its recording replays as it ran). False: none runs, or it did not stop in time."""
        from smpdevice.control import State

        thread, pen = self._thread, self.service.pen
        if thread is None or not thread.is_alive():
            return False
        try:
            pen.wait_for_state(*(s for s in State if s is not State.RUNNING),
                               timeout_s=SELF_STOP_S)
        except SmpError:
            return False
        return True

    def join(self, timeout_s: float) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout_s)

    # ------------------------------------------------------------------ calibration

    def simulator(self) -> Any:
        """The in-process simulator of a simulated pen (its gauge), or a SmpError saying why not."""
        import simulators

        pen = self.service.pen
        sim = None
        if pen.simulated:  # the open port carries its simulator: also `pensim://?seed=3` (no
            sim = (simulators.lookup(getattr(pen.link, "port", None))  # name in the URL)
                   or simulators.lookup(pen.port_url))
        if sim is None:
            raise SmpError("the gauge can be read by the service only for a simulated pen "
                           "in this process (pensim://); on a real pen read the gauge by hand "
                           "and use `smp calibrate` at the station")
        return sim

    def read_gauge(self) -> dict[str, Any]:
        from smpdevice.control.states import OFFLINE

        sim = self.simulator()
        pen = self.service.pen
        if pen.state in OFFLINE:  # a reading of a pen the service cannot see is no evidence
            raise SmpError(f"the pen is {pen.state.value}: its gauge reading would not match "
                           "what the service can check; wait for the pen to be reconnected "
                           "(pen.reconnect)")
        return {"gauge_mm": sim.gauge.read_mm()}
