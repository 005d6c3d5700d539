"""Where smpdevice keeps its data: the pass log, calibrations and logs.

Order: an explicit path (`--db PATH`), else `$SMP_DATA_DIR`, else `data_dir` in the station
config file (smpdevice.config), else a per-user default (`$XDG_DATA_HOME/smpdevice`, normally
`~/.local/share/smpdevice`). Nothing is written outside the data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from smpdevice.config import setting
from smpdevice.errors import SmpError
from smpdevice.records.files import private_dir

PASS_LOG_NAME = "passlog.sqlite"


def data_dir(create: bool = True) -> Path:
    """The data directory, created on first use."""
    chosen = setting("data_dir").value
    if chosen:
        path = Path(chosen).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "smpdevice"
    if create:
        try:
            private_dir(path)  # 0700: it holds health data (records F)
        except OSError as exc:
            raise SmpError(
                f"cannot create the data directory {path}: {exc.strerror}. "
                "Set SMP_DATA_DIR to a writable directory."
            ) from exc
    return path


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    """The pass-log database: `explicit` if given, else `<data dir>/passlog.sqlite`."""
    if explicit:
        return Path(explicit).expanduser()
    return data_dir() / PASS_LOG_NAME


def pen_log_path(pen_serial: str) -> Path:
    """The pass log of one pen, used while another chair's run holds the station's log:
    `<data dir>/passlog-<serial>.sqlite` (the serial made safe for a file name)."""
    return data_dir() / pen_log_name(pen_serial)


def pen_log_name(pen_serial: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in pen_serial)[:64] or "pen"
    return f"passlog-{safe}.sqlite"


def pass_log_paths(explicit: str | os.PathLike | None = None) -> list[Path]:
    """The logs `smp sessions` reads as one: `explicit` alone, else the station's log and
    every pen's own log in the data directory (the station's log first, even if absent, so
    a missing log is reported as before)."""
    if explicit:
        return [Path(explicit).expanduser()]
    main = db_path()
    return [main, *sorted(p for p in main.parent.glob("passlog-*.sqlite") if p.is_file())]
