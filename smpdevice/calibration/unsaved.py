"""A finished calibration the store refused (a lock another program held), kept in a file to
be saved later with every check a save applies.

`smp calibrate` writes it to the data directory (`unsaved-calibration-<id>.json`, 0600,
whole or not at all) with the pen's speed range and the bounds the run checked against, signed
with the installation key (`records.keys`, the Ed25519 key the pass log signs with): anyone
can recompute a checksum, only this installation can sign. `smp calibrations import FILE`
reads it back: `check_unsaved` (no store opened), then `save_unsaved`. Refused, nothing
changed: a file whose signature does not verify with this installation's key (edited,
damaged, or made by another installation; none is imported where no key exists), a
calibration that fails any check of the station's save that needs no pen (`savable.
check_recorded`: its fit, its depth checks' accuracy, its rates and speed within tolerance, the
station's three speeds), one expired or dated ahead of the clock, one for another pen than
`--pen`, one the store already has, and one older than the pen's newest stored calibration
(saved last, it would supersede the newer one).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from smpdevice.calibration.checked import to_store
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.savable import check_recorded
from smpdevice.control.calibration import Calibration, CalibrationError, today_utc
from smpdevice.records.files import private_text_output

FORMAT = "smpdevice-unsaved-calibration"
VERSION = 2  # 1: a plain SHA-256 anyone could recompute (review 18c); refused
SIGNED = b"smpdevice unsaved calibration\0"  # what the key signs is never a pass log's head
BOUNDS = ("fit_tolerance_mm", "verify_tolerance_mm", "depth_mean_max_mm", "depth_sd_max_mm",
          "speed_tolerance_pct")  # the run's own (`smp calibrate --tolerance-mm ...`)
MAX_BYTES = 256 * 1024  # a calibration is a few kB; anything larger is not one of these files
SPEED_MAX_HZ = 655.35  # the protocol's (0.01 Hz in 16 bits)


class UnsavedFileError(CalibrationError):
    """The file is no unsaved calibration smp wrote, or it was edited or damaged since."""


@dataclass(frozen=True)
class Kept:
    """What a kept file holds, its signature verified."""

    calibration: Calibration
    speed_range_hz: tuple[float, float]
    settings: CalibrationSettings


def unsaved_name(calibration: Calibration) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", calibration.calibration_id)[:64]
    return f"unsaved-calibration-{safe}.json"


def _message(body: dict[str, Any]) -> bytes:
    return SIGNED + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_unsaved(calibration: Calibration, speed_range_hz: tuple[float, float],
                  directory: Path, settings: CalibrationSettings | None = None,
                  key: Any = None) -> Path:
    """Write `calibration` (the pen's (min, max) speed range, the bounds of `settings` it was
    checked against) to `directory`, signed with `key` (this installation's key when None,
    made on first use); its path. OSError or InstallationKeyError when it cannot be written
    (nothing is left under its name then)."""
    from smpdevice.records.keys import InstallationKey

    key = key or InstallationKey.load_or_create()
    s = settings or CalibrationSettings()
    body = {"format": FORMAT, "version": VERSION,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "speed_range_hz": [float(speed_range_hz[0]), float(speed_range_hz[1])],
            "bounds": {name: float(getattr(s, name)) for name in BOUNDS},
            "calibration": calibration.model_dump(mode="json"),
            "public_key": key.public.hex}
    path = directory / unsaved_name(calibration)
    with private_text_output(path) as out:
        out.write(json.dumps({**body, "signature": key.sign(_message(body))}, indent=2) + "\n")
    return path


def _load(path: Path) -> Any:
    """The JSON of `path`: UnsavedFileError for no file, not a regular file, too large, or
    not JSON (a >4,300-digit number is a ValueError of its own: damaged too)."""
    try:
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise UnsavedFileError(f"{path} does not exist; nothing was changed. Give the "
                                   "unsaved-calibration file smp calibrate named") from None
        if not stat.S_ISREG(mode):
            raise UnsavedFileError(f"{path} is not a file (a directory, device, pipe or "
                                   "socket); nothing was changed. Give the unsaved-calibration "
                                   "file smp calibrate named")
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise UnsavedFileError(f"{path} is over {MAX_BYTES} bytes: an unsaved calibration "
                                   "is smaller; it is not one")
        return json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise UnsavedFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, the int-string limit
        raise UnsavedFileError(f"{path} is damaged: it is not the JSON smp calibrate wrote "
                               f"({str(exc)[:80]})") from None


def _verify(path: Path, doc: dict[str, Any]) -> None:
    """UnsavedFileError unless `doc` is signed by this installation's key."""
    from smpdevice.records.keys import key_dir, load_public

    public = load_public()
    if public is None:
        raise UnsavedFileError(
            f"{path} cannot be checked: this machine has no installation key ({key_dir()}). "
            "A kept calibration is signed with the key of the installation that made it and "
            "is imported only there (the same SMP_KEY_DIR); nothing was saved. Import it "
            "there, or recalibrate the pen")
    body = {k: v for k, v in doc.items() if k != "signature"}
    signature = doc.get("signature")
    if isinstance(signature, str) and public.verify(signature, _message(body)):
        return
    if isinstance(doc.get("public_key"), str) and doc["public_key"] != public.hex:
        raise UnsavedFileError(
            f"{path} was not signed by this installation's key ({public.fingerprint}): it was "
            "made by another installation (or edited); it is refused. Import it where it was "
            "made (its SMP_KEY_DIR), or recalibrate the pen")
    raise UnsavedFileError(f"{path} was edited or damaged since smp calibrate wrote it (its "
                           "signature does not verify with this installation's key); it is "
                           "refused. Recalibrate the pen")


def read_unsaved(path: Path) -> Kept:
    """The calibration, speed range and bounds of an unsaved-calibration file; UnsavedFileError
    if it is none, was edited or damaged since it was written, or is another installation's."""
    doc = _load(path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UnsavedFileError(f"{path} is not an unsaved calibration written by smp "
                               "calibrate (its \"format\" is not " + FORMAT + ")")
    if doc.get("version") != VERSION:
        raise UnsavedFileError(f"{path} has version {str(doc.get('version'))[:20]}; this "
                               f"smpdevice reads version {VERSION} (signed) only: recalibrate "
                               "the pen")
    _verify(path, doc)
    rng = doc.get("speed_range_hz")
    if (not isinstance(rng, list) or len(rng) != 2
            or not all(isinstance(v, float | int) and not isinstance(v, bool)
                       and math.isfinite(v) and 0 <= v <= SPEED_MAX_HZ for v in rng)
            or not rng[0] < rng[1]):
        raise UnsavedFileError(f"{path} is damaged: its speed_range_hz={rng!r} is not the "
                               "pen's (min, max) Hz")
    try:
        bounds = doc.get("bounds")
        if not isinstance(bounds, dict) or set(bounds) != set(BOUNDS):
            raise CalibrationError(f"its bounds are not {', '.join(BOUNDS)}")
        settings = CalibrationSettings(**bounds)
        calibration = Calibration.model_validate(doc.get("calibration"))
    except (ValidationError, CalibrationError, TypeError) as exc:
        raise UnsavedFileError(f"{path} is damaged: its calibration is refused "
                               f"({str(exc).splitlines()[0][:200]})") from None
    return Kept(to_store(calibration), (float(rng[0]), float(rng[1])), settings)


def check_unsaved(path: Path, *, pen_serial: str | None = None,
                  now: datetime | None = None) -> Kept:
    """The kept calibration of `path` checked as a save checks it, and for `pen_serial`,
    before any store is opened: CalibrationError (nothing changed) if it is refused."""
    kept = read_unsaved(path)
    calibration = kept.calibration
    cid, serial = calibration.calibration_id, calibration.pen_serial
    if pen_serial is not None and serial != pen_serial:
        shown = pen_serial if pen_serial.isprintable() else repr(pen_serial)
        raise CalibrationError(f"calibration {cid} in {path} is for pen {serial}, not "
                               f"{shown}; nothing was saved. Import it for its own pen "
                               f"(--pen {serial}), or calibrate pen {shown}")
    try:  # an expired one saved last would leave the pen with none valid
        calibration.check_for(serial, now or today_utc(),
                              again=f"smp calibrate --port PORT (pen {serial})")
        check_recorded(calibration, kept.settings, kept.speed_range_hz)  # the save's own
    except CalibrationError as exc:
        raise CalibrationError(f"calibration {cid} in {path} is refused: "
                               f"{str(exc).rstrip('.')}. Nothing was saved") from None
    return kept


def import_unsaved(path: Path, store: Any, *, pen_serial: str | None = None,
                   now: datetime | None = None) -> Calibration:
    """Save the calibration of `path` to `store` (a CalibrationStore) with every check a save
    applies, then remove the file; CalibrationError, nothing changed, if refused."""
    return save_unsaved(path, check_unsaved(path, pen_serial=pen_serial, now=now), store)


def save_unsaved(path: Path, kept: Kept, store: Any) -> Calibration:
    """Save `kept` (`check_unsaved`'s, from `path`) to `store` unless it holds it already or a
    newer calibration of the pen, then remove the file; CalibrationError if refused. Both are
    looked at inside the save's own transaction (`CalibrationStore.save(newest=True)`): a save
    by another program between a look and the insert cannot be superseded silently."""
    from smpdevice.calibration.store_sql import StoredAlready

    calibration = kept.calibration
    cid, serial = calibration.calibration_id, calibration.pen_serial
    try:
        store.save(calibration, speed_range_hz=kept.speed_range_hz, newest=True)
    except StoredAlready as exc:
        newest = exc.newest
        if newest is None:
            raise CalibrationError(f"calibration {cid} is already saved in {store.path}; "
                                   f"nothing was changed. The file {path} is no longer "
                                   "needed") from None
        raise CalibrationError(
            f"calibration {cid} in {path} (made {calibration.created_at:%Y-%m-%d %H:%M} UTC) "
            f"is older than pen {serial}'s newest stored calibration {newest.calibration_id} "
            f"(made {newest.created_at:%Y-%m-%d %H:%M} UTC): saved now it would supersede "
            "the newer one. Nothing was saved") from None
    with contextlib.suppress(OSError):  # saved: a second import would be refused anyway
        os.unlink(path)
    return calibration
