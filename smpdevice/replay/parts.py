"""A session's recording for `smp replay`: found, hash-checked, and split into its parts.

A session recorded in one run has one part (`recordings/<SESSION>.mcap`). A session resumed
with `smp run --resume` has one part per run (`<SESSION>part<n>.mcap`, see
`smpdevice.replay.recorder.part_name`), each linked with its SHA-256 in the close record.
A part is replayed as its run started: part 1 plays the whole plan; part n plays the passes
its resumption record (the (n-1)-th `session_resume`) lists as left, remainders included. Its
passes in the pass log are those begun between its resumption and the next: counted, by the
`passes_before` each part's `/meta` records (older recordings: by the passes' and the
resumptions' times, which two controllers on virtual clocks do not keep in order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from smpdevice.records.frames import Recording, RecordingError, file_sha256, read_recording
from smpdevice.records.frames import recording_path as _recording_path
from smpdevice.replay.recorder import part_name
from smpdevice.replay.script import preamble_entries


@dataclass
class Part:
    number: int  # 1: the session's opening; n: its (n-1)-th resumption
    recording: Recording
    passes_left: list[dict[str, Any]] | None  # None: the whole plan (part 1)
    passes: list[Any] = field(default_factory=list)  # its PassRecords, from the pass log
    # Its connection's handshake (`/preamble/*`): what a replay connects on (see `_preambles`)
    preamble: list[tuple[float, str, bytes]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"part {self.number} ({self.recording.path.name})"


@dataclass
class LoadedSession:
    session_id: str
    record: Any  # SessionRecord
    recording: Recording  # the first part's
    notes: list[str]
    parts: list[Part] = field(default_factory=list)


def recording_path(passlog: Any, name: str) -> Path:
    return _recording_path(Path(passlog.path), name.removesuffix(".mcap"))


def load(passlog: Any, session_id: str) -> LoadedSession:
    """The session's record and its recordings, hash-checked. SmpError when it cannot be."""
    session = passlog.session(session_id)  # SmpError for an unknown id, with what to do
    sid = session.session_id
    linked = (session.summary or {}).get("recording")
    resumptions = list(passlog.resumptions(sid)) if hasattr(passlog, "resumptions") else []
    notes: list[str] = []
    paths: list[Path] = []
    # What the close record says cut a part's recording short (a write error whose marker
    # could not be written), by file name
    cut = {str(p.get("file")): str(p["truncated"]) for p in
           (linked if isinstance(linked, list) else [linked]) if isinstance(p, dict)
           and isinstance(p.get("truncated"), str) and p["truncated"]}
    if isinstance(linked, list):  # a resumed session: one recording per part, each checked
        paths = [_verified(passlog, sid, part) for part in linked]
        if not paths:
            raise RecordingError(f"session {sid} has no frame recording linked in its close "
                                 "record (its parts list is empty)")
    elif isinstance(linked, dict):
        paths = [_verified(passlog, sid, linked)]
        if resumptions:
            notes.append(f"session {sid} was resumed before every part was linked: only the "
                         "part its close record links is verified and replayed")
    else:
        first = recording_path(passlog, sid)
        if session.closed_at is not None:
            why = ("its recording is there but unverifiable: a resumed session keeps the "
                   "recording of its first part, unlinked" if first.is_file() else
                   "recorded before recordings existed, or the recording could not be started; "
                   "see the log")
            raise RecordingError(f"session {sid} has no frame recording linked in its close "
                                 f"record ({why})")
        notes.append(f"session {sid} is still open (interrupted or crashed): its recording "
                     "is not linked by hash, so it is replayed unverified")
        if not first.is_file():
            raise RecordingError(f"the recording of session {sid} is missing: {first}. "
                                 "Recordings live beside the pass log; restore it from the "
                                 "backup")
        paths = [first] + [_open_part(passlog, sid, n) for n in range(2, len(resumptions) + 2)]
    recordings = [_read(path, sid, session, notes, cut.get(path.name)) for path in paths]
    parts = _parts(sid, recordings, resumptions, list(session.passes))
    return LoadedSession(sid, session, recordings[0], notes, parts)


def _read(path: Path, sid: str, session: Any, notes: list[str],
          truncated: str | None = None) -> Recording:
    rec = read_recording(path)
    rec.truncated = rec.truncated or truncated
    meta = rec.meta
    if meta.get("session_id") != sid:
        raise RecordingError(f"{path} records session {meta.get('session_id')!r}, not {sid}")
    if (session.key_fingerprint and meta.get("key_fingerprint")
            and meta["key_fingerprint"] != session.key_fingerprint):
        raise RecordingError(
            f"{path} was made by another installation (key {meta['key_fingerprint']}, this "
            f"log's session is signed by {session.key_fingerprint}); replay it there")
    if rec.truncated:
        notes.append(f"{path.name} was cut short ({rec.truncated}): replayed up to there")
    if rec.damaged:
        notes.append(f"{path.name} ends mid-record ({rec.damaged}): replayed up to its last "
                     "complete frame")
    return rec


def _parts(sid: str, recordings: list[Recording], resumptions: list[dict[str, Any]],
           passes: list[Any]) -> list[Part]:
    """Each recording with the plan its run played and the passes it logged."""
    numbers = [_part_number(rec, default=i + 1) for i, rec in enumerate(recordings)]
    # Checked with one file too: part 2's file under part 1's name is no whole session
    for rec, number in zip(recordings, numbers, strict=True):
        named = [n for n in range(1, len(resumptions) + 2)
                 if rec.path.name == part_name(sid, n) + ".mcap"]
        if named and named[0] != number:
            raise RecordingError(f"{rec.path} records part {number} of session {sid}, not "
                                 f"part {named[0]} as its name says: a part's file was renamed "
                                 "or replaced; restore the original from the backup")
    if len(recordings) > 1 and numbers != list(range(1, len(recordings) + 1)):
        raise RecordingError(f"session {sid}'s recordings are parts {numbers}, not 1 to "
                             f"{len(recordings)} in order: its close record was altered")
    # Part n >= 2 started at resumption n-1 (a recording's own `part` says which it is).
    starts = [_when(r.get("resumed_at")) for r in resumptions]
    before = {n: _passes_before(rec, len(passes)) for rec, n in zip(recordings, numbers,
                                                                     strict=True)}
    out: list[Part] = []
    for rec, number in zip(recordings, numbers, strict=True):
        if number == 1:
            left, begin = None, None
        else:
            if number - 2 >= len(resumptions):
                raise RecordingError(f"{rec.path.name} is part {number} of session {sid}, "
                                     f"which has {len(resumptions)} resumption record(s)")
            left, begin = _passes_left(rec, resumptions[number - 2]), starts[number - 2]
        end = starts[number - 1] if number - 1 < len(starts) else None
        lo = 0 if number == 1 else before[number]
        hi = before.get(number + 1) if end is not None else len(passes)
        if lo is not None and hi is not None and lo <= hi:  # counted when it was recorded
            mine = passes[lo:hi]
        else:  # older recordings: by time (one controller's clock, a resume's another's)
            mine = [p for p in passes
                    if (begin is None or _when(p.started_at) >= begin)
                    and (end is None or _when(p.started_at) < end)]
        out.append(Part(number, rec, left, mine))
    _preambles(out)
    return out


def _preambles(parts: list[Part]) -> None:
    """Each part's preamble, as its connection's first session found it. A part resumed on
    the connection of the part before recorded (before the recorder kept only that) the
    connection's preamble and, after it, what crossed the port untapped between the two
    sessions: the pen's reports of the fault, its clear. Those are not a handshake: a replay
    connecting on them would start on a faulted pen. So a preamble that begins with the
    previous part's is cut back to it."""
    before: list[tuple[str, bytes]] | None = None
    for part in parts:
        entries = preamble_entries(part.recording)
        mine = [(who, data) for _, who, data in entries]
        if before and len(mine) > len(before) and mine[:len(before)] == before:
            entries = entries[:len(before)]
            mine = before
        part.preamble, before = entries, mine


def _passes_before(rec: Recording, total: int) -> int | None:
    """How many of the session's passes had begun when this part's recording started (its
    `/meta` `passes_before`, since the parts are split by it); None when it does not say."""
    value = rec.meta.get("passes_before")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= total:
        raise RecordingError(f"{rec.path}: its metadata says {value!r} passes had begun before "
                             f"it; the session has {total}: it is no recording of this session")
    return value


def _part_number(rec: Recording, default: int) -> int:
    value = rec.meta.get("part", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise RecordingError(f"{rec.path}: its metadata names part {value!r}; a part is a "
                             "whole number from 1")
    return value


def _when(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise RecordingError(f"a time in the pass log is not ISO 8601 ({text!r}): check the "
                             "log with `smp sessions verify`") from None


def _passes_left(rec: Recording, resumption: dict[str, Any]) -> list[dict[str, Any]]:
    """The passes a resumption played, checked (index, and one positive finite target)."""
    left = resumption.get("passes_left")
    if not isinstance(left, list) or not left:
        raise RecordingError(f"{rec.path.name}: its resumption record lists no passes left "
                             "(`passes_left`); check the log with `smp sessions verify`")
    out: list[dict[str, Any]] = []
    for item in left:
        index = item.get("index") if isinstance(item, dict) else None
        ok = isinstance(index, int) and not isinstance(index, bool) and index >= 0
        targets = [item.get(k) for k in ("duration_s", "impressions")] if ok else []
        given = [v for v in targets if v is not None]
        ok = ok and len(given) == 1 and not isinstance(given[0], bool) and isinstance(
            given[0], int | float) and math.isfinite(given[0]) and given[0] > 0
        if not ok:
            raise RecordingError(f"{rec.path.name}: its resumption record's passes_left has "
                                 f"an invalid entry {item!r} (an index and exactly one "
                                 "positive duration_s or impressions)")
        out.append(item)
    return out


def _open_part(passlog: Any, sid: str, number: int) -> Path:
    """Part `number`'s file of an open resumed session: each resumption recorded one, so a
    missing one is an error (replaying without it would say `match` for passes never
    compared)."""
    path = recording_path(passlog, part_name(sid, number))
    if not path.is_file():
        raise RecordingError(f"the recording of part {number} of session {sid} is missing: "
                             f"{path}. Recordings live beside the pass log; restore it from "
                             "the backup")
    return path


def _verified(passlog: Any, sid: str, linked: Any) -> Path:
    """A linked part's file, checked against its hash (RecordingError otherwise)."""
    name = str(linked.get("file", "")) if isinstance(linked, dict) else ""
    path = recording_path(passlog, name)
    if not path.is_file():
        raise RecordingError(f"the recording of session {sid} is missing: {path}. Recordings "
                             "live beside the pass log; restore it from the backup")
    actual = file_sha256(path)
    if actual != linked.get("sha256"):
        raise RecordingError(
            f"the recording {path} does not match the hash in session {sid}'s close record "
            f"(recorded {str(linked.get('sha256'))[:16]}..., file {actual[:16]}...): it was "
            "edited or replaced. Restore the original from the backup")
    return path
