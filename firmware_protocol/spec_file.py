"""The file `python -m firmware_protocol.spec --write|--check FILE` works on: read, refreshed,
written back whole or not at all, and any problem with it said in one line (no traceback).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024  # docs/protocol.md is about 100 KiB: a bigger file is no spec


class MarkerError(ValueError):
    """The text lacks a generated block's markers, or holds one twice."""


def reason(exc: OSError | UnicodeDecodeError | MarkerError) -> str:
    """Why the file cannot be used, in a few words."""
    if isinstance(exc, UnicodeDecodeError):
        return (f"not UTF-8 text (byte 0x{exc.object[exc.start]:02X} at offset {exc.start})")
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"{exc} (each block needs its BEGIN and END GENERATED markers, once)"


def write_whole(path: Path, text: str) -> None:
    """Replace `path`'s contents with `text` through a temporary file renamed over it, so a
    full disk or a kill mid-write leaves the old file, never a cut one (a link is followed)."""
    target = path.resolve()
    # A name of its own, created exclusively: never a link or another run's file left there.
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".spec-tmp",
                                dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_spec(path: Path) -> str:
    """The text of `path`, a regular file of at most MAX_BYTES (a FIFO would block, a device
    or a huge file fill memory): OSError naming why not."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without a writer too
    with open(fd, "rb", buffering=0) as raw:
        info = os.fstat(raw.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > MAX_BYTES:
            raise OSError(0, f"{info.st_size} bytes: larger than a spec ({MAX_BYTES} at most)")
        data = raw.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise OSError(0, f"larger than a spec ({MAX_BYTES} bytes at most)")
    return data.decode("utf-8")


def update(path: Path, refresh: Callable[[str], str], write: bool) -> int:
    """--write (`write`) or --check `path`; the exit code: 0 done / up to date, 1 stale or a
    file that cannot be used (one line on stderr naming it and why)."""
    try:
        old = read_spec(path)
        new = refresh(old)
        if write and new != old:
            write_whole(path, new)
    except (OSError, UnicodeDecodeError, MarkerError) as exc:
        print(f"{path}: {reason(exc)}", file=sys.stderr)
        return 1
    if write:
        print(f"refreshed the generated blocks in {path}")
    elif new != old:
        print(f"{path} is stale: run python -m firmware_protocol.spec --write {path}")
        return 1
    else:
        print(f"{path} is up to date")
    return 0
