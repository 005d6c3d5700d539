"""Private files: health data (screening answers) lives in the data directory.

The data directory is 0700 and every file smpdevice writes in it is 0600, whatever the umask:
files are created with that mode and `fchmod`ed (the umask can only remove bits, but a file made
by an older version, or copied in, may be looser and is tightened by the next writer). SQLite
creates a log's `-wal` and `-shm` with the log file's own mode; they are tightened too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from smpdevice.errors import SmpError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


class NotAFileError(SmpError):
    """A path given for a file (`--db`, `--calibrations`, a log's side file) is a directory,
    a device, a pipe or a socket: nothing was opened, created or re-moded."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def require_regular_file(path: Path) -> bool:
    """True when `path` is a regular file (a symlink to one counts), False when nothing is
    there; NotAFileError (exit 2) for anything else, before anyone touches it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    except NotADirectoryError:  # a parent is a file: nothing can be there
        return False
    if not stat.S_ISREG(mode):
        raise NotAFileError(f"{path} is {_kind(mode)}, not a file: give the path of a file "
                            "(or, to write, of one to create); nothing was changed")
    return True


def private_dir(path: Path) -> None:
    """Create `path` (and parents) if needed and make it 0700 when this user owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _tighten(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist; tighten it if it does. A path
    that is not a regular file (a directory given as --db) is refused, its mode untouched."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        require_regular_file(path)
        _tighten(path, PRIVATE_FILE)
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def open_private_text(path: Path) -> TextIO:
    """`path` opened to write text (created, or emptied), 0600 whatever the umask: an export
    with real names. A FIFO or a device (/dev/stdout) is written as it is, its mode untouched."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        info = os.fstat(fd)
        # Emptied before tightening: nothing private was ever in it under the old mode.
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def private_text_output(path: Path) -> Iterator[TextIO]:
    """`path` written as text, 0600 whatever the umask, whole or not at all: into a temporary
    file beside it (`.NAME.XXXX.partial`), synced, then renamed onto it. On any error (a full
    disk, Ctrl-C, an unreadable log) the temporary is removed and `path` is as it was: never a
    cut file under the name asked for. A symlink's target is replaced; a FIFO or a device
    (/dev/stdout) is written as it is (`open_private_text`)."""
    target = Path(os.path.realpath(path))
    try:  # what `path` opens, not its resolved name: /dev/stdout of a pipe resolves to
        # /proc/PID/fd/pipe:[N], which names nothing (it was taken for a new file there)
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        regular = True  # a new file (a dangling symlink: its target is made)
    if not regular:
        with open_private_text(path) as handle:
            yield handle
        return
    # The temporary's name is chosen before it is made, and its making is inside the `try`:
    # a stop signal (SIGTERM taken as Ctrl-C raises at any bytecode) landing just after the
    # file was created, before its name or handle was known here (`tempfile.mkstemp`, then
    # `os.fdopen`), left the `.partial`, client names and all (flaky test_rev15_export_sigterm).
    temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.partial"
    made: TextIO | None = None
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                     PRIVATE_FILE)  # 64 random bits: O_EXCL never meets another's file
        made = os.fdopen(fd, "w", encoding="utf-8", newline="")
        yield made
        made.flush()
        os.fsync(made.fileno())
        made.close()
        os.replace(temporary, target)
    except BaseException as exc:
        if made is not None:
            with contextlib.suppress(OSError):  # closes the file even when its flush fails
                made.close()
        elif isinstance(exc, FileExistsError):  # not ours: never removed
            raise
        with contextlib.suppress(OSError):  # not made yet (FileNotFoundError) is fine
            os.unlink(temporary)
        raise


def tighten_siblings(path: Path, suffixes: tuple[str, ...] = ("-wal", "-shm")) -> None:
    """Make the SQLite side files of `path` 0600, those that exist."""
    for suffix in suffixes:
        _tighten(path.with_name(path.name + suffix), PRIVATE_FILE)


def tighten_folder(path: Path) -> None:
    """`path` 0700 and every regular file in it 0600 (a folder of records: the frame
    recordings beside a log), those this user owns; nothing is made when it is not there. An
    older version's, or a backup's copied-in, looser recordings are tightened by the next
    writer as the log itself is."""
    _tighten(path, PRIVATE_DIR)
    mine = os.geteuid()
    with (contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError),
          os.scandir(path) as entries):
        for entry in entries:  # one lstat each (10,000 recordings: 30-60 ms), a chmod if loose
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat(follow_symlinks=False)
                if (stat.S_ISREG(info.st_mode) and info.st_mode & 0o077
                        and info.st_uid == mine):
                    _tighten(Path(entry.path), PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    # Someone else's file (a shared directory) is left as it is; so is anything but a file for
    # a file's mode (a directory made 0600 loses its x bit), and anything on read-only media:
    # nothing can be written there, so whoever opens it to write says why (EROFS).
    with contextlib.suppress(FileNotFoundError, PermissionError):
        info = path.stat()
        wanted = stat.S_ISDIR if mode == PRIVATE_DIR else stat.S_ISREG
        if (wanted(info.st_mode) and info.st_mode & 0o777 & ~mode
                and info.st_uid == os.geteuid()):
            try:
                os.chmod(path, mode)
            except OSError as exc:
                if exc.errno != errno.EROFS:
                    raise
