"""Recording a session's frames: the tap on the link's port, started at session open.

`start_recording` is called by `TreatmentSession.open` once the session's record exists; it
writes the metadata a replay needs (profile, calibration, zones, pen), the connection's
preamble (the handshake the port kept), then every byte both ways and every state change
until `seal()`, which `TreatmentSession.close` puts in the close record. Nothing here may
stop a treatment: any failure to start is logged and the session runs unrecorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.records.frames import DEFAULT_MAX_BYTES, FrameWriter, recording_path
from smpdevice.transport import TappedPort

if TYPE_CHECKING:
    from smpdevice.control import PenController, State
    from smpdevice.profiles import TreatmentProfile
    from smpdevice.screening import Screening

log = structlog.get_logger("smpdevice.replay")


class SessionRecording:
    """The running recording of one session (see the module's docstring)."""

    def __init__(self, pen: PenController, port: TappedPort, writer: FrameWriter) -> None:
        self.pen = pen
        self.port = port
        self.writer = writer
        self._sealed: dict[str, Any] | None = None

    def _tap(self, direction: str, data: bytes) -> None:
        self.writer.add("/" + direction, self.pen.clock.now(), data)

    def _state(self, old: State, new: State, reason: str) -> None:
        self.writer.add_json("/state", self.pen.clock.now(),
                             {"old": old.value, "new": new.value, "reason": str(reason)})

    def attach(self) -> None:
        now = self.pen.clock.now()
        for direction, data in list(self.port.preamble):
            self.writer.add("/preamble/" + direction, now, data)
        recent = list(getattr(self.pen.link, "recent_telemetry", ()))
        if recent:  # what the controller last knew of the pen (the counters' base)
            from firmware_protocol import encode

            self.writer.add("/pen", now, encode(recent[-1], 0))
        self.port.set_tap(self._tap)
        self.pen.add_state_listener(self._state)

    def seal(self) -> dict[str, Any]:
        """Stop recording and finish the file; the record for the session's close."""
        if self._sealed is None:
            self.port.set_tap(None)
            self.pen.state_listeners.remove(self._state)
            self._sealed = self.writer.seal().as_record()
        return self._sealed


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
                    max_bytes: int = DEFAULT_MAX_BYTES,
                    part: int = 1) -> SessionRecording | None:
    """Begin recording `session_id` beside `passlog`; None (logged) when it cannot. `part`:
    1 at the session's opening, n + 1 at its n-th resume (its own file, see `part_name`)."""
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
            "state": pen.state.value,
        }
        writer = FrameWriter(path, meta, start_s=pen.clock.now(), max_bytes=max_bytes)
    except Exception as exc:  # the treatment goes on unrecorded
        log.error("session not recorded: the recording cannot be started",
                  session_id=session_id, error=str(exc))
        return None
    recording = SessionRecording(pen, port, writer)
    recording.attach()
    return recording
