"""A session's frame recording: the raw bytes between host and pen, timestamped, in an MCAP file.

One file per session, `recordings/<session_id>.mcap` beside the pass log, 0600 like every
records file. MCAP (https://mcap.dev) because it is a documented, self-describing container
with readers in several languages (Foxglove opens it), it streams (no index needed to read),
and unchunked it is crash-safe: every message is a complete record as soon as it is flushed.

Channels (message encoding `smp.bytes` = raw wire bytes as read or written; `json` = UTF-8):
- `/meta` (json, first message): format, session, installation key, pen, profile, calibration,
  and (since session 20) `start`: the controller's state at the recording's start, with the
  reason of its latch (`{"state", "reason"}`: the replay starts its controller there);
- `/preamble/host`, `/preamble/pen`: the first bytes of the connection (the handshake);
- `/host`, `/pen`: the bytes the host wrote and read during the session;
- `/state` (json): the controller's state changes `{"old", "new", "reason"}`;
- `/marker` (json): `{"truncated": reason}` when the size cap or a write error ended it;
- `/input` (json): the host-side inputs that change the controller's decisions (an operator's
  stop, an E-stop request; `smpdevice.replay.inputs`), at the point of the conversation they
  came; a recording whose `/meta` has no `inputs` key predates it;
- `/reconnect/host`, `/reconnect/pen`: the first bytes of a new connection the controller made
  during the session (`pen.reconnect()` after a lost link: its handshake), recorded when that
  attempt ended, after its `reconnect` input; the session's bytes on it go on `/host`, `/pen`.
Log times are nanoseconds of the controller's Clock since the recording started.

The writer never blocks the link: `add` appends to a bounded queue that a thread writes and
flushes every `FLUSH_S`; a crash loses at most that last interval. A write error is logged and
ends the recording (the treatment goes on); past `max_bytes` a `truncated` marker is the last
message. `seal()` finishes the file and returns its SHA-256, which the session's close record
carries (`summary["recording"]`); `smp replay` checks it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from smpdevice.errors import SmpError
from smpdevice.records.files import PRIVATE_FILE, private_dir

log = structlog.get_logger("smpdevice.records.frames")

FORMAT = "smp-frames/1"
RECORDINGS_DIR = "recordings"
SUFFIX = ".mcap"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # ~6.5 h at 11 KB/s (100 Hz telemetry); docs/simulator.md
MAX_QUEUE = 100_000  # entries waiting for the writer thread; beyond it the recording stops
FLUSH_S = 0.05
CHANNELS = ("/meta", "/preamble/host", "/preamble/pen", "/host", "/pen", "/state", "/marker",
            "/input", "/reconnect/host", "/reconnect/pen")
_JSON = {"/meta", "/state", "/marker", "/input"}
_RESERVE = 4096  # room kept under the cap for the marker and the MCAP footer


class RecordingError(SmpError):
    """A frame recording cannot be found, read or trusted; the message says what to do."""


def recordings_dir(passlog_path: Path) -> Path:
    return Path(passlog_path).parent / RECORDINGS_DIR


def recording_path(passlog_path: Path, session_id: str) -> Path:
    if not session_id.isalnum():  # it becomes a file name: nothing like ../ gets through
        raise RecordingError(f"session id {session_id!r} is not a session id (letters and "
                             "digits only); list sessions with `smp sessions list`")
    return recordings_dir(passlog_path) / f"{session_id}{SUFFIX}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SealedRecording:
    """What the session's close record carries about its recording."""

    file: str
    sha256: str  # "" when the file could not be read at the close (`truncated` says why)
    size_bytes: int
    messages: int
    truncated: str | None = None  # why it stopped early (size cap, write error), else None

    def as_record(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "size_bytes": self.size_bytes,
                "messages": self.messages, "truncated": self.truncated}


class FrameWriter:
    """Writes one recording; `add` from any thread (never blocks), `seal` once at the end."""

    def __init__(self, path: Path, meta: dict[str, Any], *, start_s: float,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        from mcap.writer import CompressionType, Writer

        if max_bytes < 2 * _RESERVE:
            raise RecordingError(f"max_bytes={max_bytes} is too small for a recording; "
                                 f"use at least {2 * _RESERVE} bytes")
        self.path = Path(path)
        self.start_s = start_s
        self.max_bytes = max_bytes
        self.messages = 0
        self.flushes = 0  # writes of the queue to the file so far (a waiter's condition)
        self.truncated: str | None = None
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)
        self._file = os.fdopen(fd, "wb")
        self._mcap = Writer(self._file, use_chunking=False, compression=CompressionType.NONE)
        self._mcap.start(profile=FORMAT, library="smpdevice")
        self._channels = {
            name: self._mcap.register_channel(name, "json" if name in _JSON else "smp.bytes", 0)
            for name in CHANNELS
        }
        self._queue: collections.deque[tuple[str, float, bytes]] = collections.deque()
        self._wake = threading.Condition()
        self._closing = False
        self._write("/meta", start_s, json_bytes({"format": FORMAT, **meta}))
        self._file.flush()
        self._thread = threading.Thread(target=self._run, name="smp-frame-writer", daemon=True)
        self._thread.start()

    @property
    def stopped(self) -> bool:
        return self.truncated is not None or self._closing

    def add(self, channel: str, t_s: float, data: bytes) -> None:
        """Queue one message (bytes, or JSON text for the json channels). Never blocks."""
        if self.truncated is not None or self._closing:
            return
        if len(self._queue) >= MAX_QUEUE:
            self._stop_early(f"the writer fell behind by {MAX_QUEUE} messages (slow disk)")
            return
        self._queue.append((channel, t_s, bytes(data)))

    def add_json(self, channel: str, t_s: float, value: dict[str, Any]) -> None:
        self.add(channel, t_s, json_bytes(value))

    def _stop_early(self, reason: str) -> None:
        if self.truncated is None:
            self.truncated = reason
            self._queue.append(("/marker", -1.0, json_bytes({"truncated": reason})))

    def _write(self, channel: str, t_s: float, data: bytes) -> None:
        t_ns = max(0, round((t_s - self.start_s) * 1e9)) if t_s >= 0 else 0
        self._mcap.add_message(self._channels[channel], log_time=t_ns, data=data,
                               publish_time=t_ns, sequence=self.messages)
        self.messages += 1

    def _drain(self) -> None:
        while self._queue:
            channel, t_s, data = self._queue.popleft()
            if channel != "/marker" and self._file.tell() + len(data) + 64 > (
                    self.max_bytes - _RESERVE):
                self.truncated = self.truncated or f"size cap of {self.max_bytes} bytes reached"
                self._queue.clear()
                self._write("/marker", t_s, json_bytes({"truncated": self.truncated}))
                break
            self._write(channel, t_s, data)
        self._file.flush()
        self.flushes += 1

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait(FLUSH_S)
                closing = self._closing
            try:
                self._drain()
            except Exception as exc:  # a recording never stops the treatment
                self._failed(exc)
                return
            if closing:
                return

    def _failed(self, exc: BaseException) -> None:
        self.truncated = f"write error: {exc}"
        self._queue.clear()
        log.error("frame recording stopped; the treatment goes on", path=str(self.path),
                  error=str(exc))

    def seal(self) -> SealedRecording:
        """Write what is queued, finish the file (MCAP footer) and return its hash."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout=10.0)
        if not self._file.closed:
            try:
                self._drain()
                self._mcap.finish()
            except Exception as exc:
                self._failed(exc)
            finally:
                try:
                    self._file.close()
                except OSError as exc:
                    self._failed(exc)
        try:
            sha256, size_bytes = file_sha256(self.path), self.path.stat().st_size
        except OSError as exc:  # gone or unreadable: the session still closes, and says so
            self._failed(exc)
            sha256, size_bytes = "", 0
        return SealedRecording(self.path.name, sha256, size_bytes, self.messages, self.truncated)


def json_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, allow_nan=False).encode()


# ------------------------------------------------------------------------------ reading

@dataclass
class Entry:
    channel: str
    t_s: float  # since the recording started
    data: bytes


@dataclass
class Recording:
    path: Path
    meta: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)
    truncated: str | None = None  # the writer's marker: cut at the size cap or a write error
    damaged: str | None = None  # the file ends mid-record: a crash, or a cut copy
    finished: bool = False  # the MCAP footer is there: the writer sealed it

    def channel(self, name: str) -> list[Entry]:
        return [e for e in self.entries if e.channel == name]


MAX_READ_BYTES = 2 * DEFAULT_MAX_BYTES


def read_recording(path: Path) -> Recording:
    """Every message of a recording, up to its last complete record (a crash's tail is noted
    in `damaged`, not raised). RecordingError when it is no recording of this format."""
    from mcap.records import Channel, Footer, Message
    from mcap.stream_reader import StreamReader

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RecordingError(f"cannot read the recording {path}: {exc.strerror or exc}") from exc
    if size > MAX_READ_BYTES:
        raise RecordingError(f"{path} is {size} bytes, more than a recording can be "
                             f"({MAX_READ_BYTES}); it is no recording of this program")
    channels: dict[int, str] = {}
    meta: dict[str, Any] | None = None
    rec: Recording | None = None
    damaged: str | None = None
    finished = False
    with open(path, "rb") as f:
        try:
            for record in StreamReader(f, record_size_limit=16 * 1024 * 1024).records:
                if isinstance(record, Channel):
                    channels[record.id] = record.topic
                elif isinstance(record, Message):
                    name = channels.get(record.channel_id, "")
                    if meta is None:
                        meta = _meta(path, name, record.data)
                        rec = Recording(path, meta)
                        continue
                    assert rec is not None
                    entry = Entry(name, record.log_time / 1e9, bytes(record.data))
                    rec.entries.append(entry)
                    if name == "/marker":
                        rec.truncated = str(_load_json(path, entry.data).get("truncated"))
                elif isinstance(record, Footer):
                    finished = True
        except Exception as exc:  # any decoding failure: the tail is lost
            damaged = f"{type(exc).__name__}: {exc}"[:200]
    if rec is None:
        raise RecordingError(f"{path} is not a readable smpdevice frame recording "
                             f"({damaged or 'no metadata'})")
    rec.damaged = damaged
    rec.finished = finished
    return rec


def _load_json(path: Path, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise RecordingError(f"{path}: a JSON message does not parse ({exc})") from exc
    if not isinstance(value, dict):
        raise RecordingError(f"{path}: a JSON message is not an object")
    return value


def _meta(path: Path, channel: str, data: bytes) -> dict[str, Any]:
    if channel != "/meta":
        raise RecordingError(f"{path} is not a smpdevice frame recording (no /meta first)")
    meta = _load_json(path, data)
    if meta.get("format") != FORMAT:
        raise RecordingError(f"{path} has format {meta.get('format')!r}; this version reads "
                             f"{FORMAT!r}. Replay it with the smpdevice version that wrote it.")
    return meta
