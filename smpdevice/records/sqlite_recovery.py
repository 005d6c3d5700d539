"""What a pass log's writer checks and completes when it opens, before it appends anything.

- **The head** (`check_head`): a writer signs every head it writes, so it must never chain onto
  a head it cannot vouch for: records added after the signed head, records removed, a head
  edited, a signature removed or one that does not verify are refused (`LogAltered`): signing
  on would launder them (REVD-10). Only a log that was never signed (written before heads
  were signed: nothing in it names a key: no signed head, no key, no session opened by a keyed
  writer, no receipt) is adopted as it is; one whose signatures were stripped is refused.
- **A checkpoint** (`checkpoint_figures`): the figures crash recovery writes into the chained
  `pass_end` are checked first (`model.checked_figures`); a damaged or edited row is not signed
  in: the pass is recorded without figures, marked `checkpoint_damaged`.
- **The missing receipts** (`missing_receipts`): a crash between a close's commit and its
  receipt's append, or appends the disk refused in earlier runs, leave the anchors file short
  of its last receipts; the next writer appends every one, oldest first, only when the file
  ends with the receipt of one of the log's closes (or holds none and the log has one close),
  so an emptied, cut-back or older anchors file still fails verify. A last line a power cut
  tore is cut and completed only when it is the start of the next missing receipt.
- **The anchors file is held** (`anchors_held`) exclusively from before a close commits until
  its receipt is appended, so a reader that reads the log first and then the file under a
  shared lock never sees a close without its receipt.
- **Export pseudonyms** (`pseudonym_secret`): a reader never creates an installation key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from smpdevice.records.keys import KEY_FILE_NAME, InstallationKey, PublicKey, key_dir
from smpdevice.records.model import PassLogError, PassStats, checked_figures
from smpdevice.records.signing import Receipt, anchor_line, head_statement

_TAIL_BYTES = 8192  # the end of the anchors file read for its last receipt (about 330 bytes)
_NO_RECEIPT = (0, "")
HOLD_WAIT_S = 1.0  # a close waits this long at most for readers of the anchors file


class LogAltered(PassLogError):
    """The log's head is not what its last writer left: refused before anything is written."""


def _keys(conn: sqlite3.Connection) -> dict[str, PublicKey]:
    keys = (PublicKey(public) for (public,) in conn.execute("SELECT public_key FROM signing_keys"))
    return {key.fingerprint: key for key in keys}


def _signed_by_log_key(conn: sqlite3.Connection, log_id: str, seq: int, digest: str,
                       fingerprint: str | None, signature: str | None) -> bool:
    key = _keys(conn).get(fingerprint or "")
    return bool(key and signature and key.verify(signature, head_statement(log_id, seq, digest)))


def check_head(conn: sqlite3.Connection, path: Path, log_id: str, anchors_file: Path,
               key: InstallationKey) -> bool:
    """Raise LogAltered when the head is not one this writer may chain onto; True when the
    log was never signed (its head is to be adopted), False when its head holds and (given
    the writer's `key`) every signed head it keeps (`sqlite_heads`). A schema altered (a
    trigger, a column added) is refused first (`sqlite_layout`)."""
    from smpdevice.records.sqlite_layout import refuse_altered_schema, signed_evidence

    refuse_altered_schema(conn, path)
    last = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    head = conn.execute("SELECT seq, hash, key_fingerprint, signature FROM chain_head").fetchone()
    what = None
    if last is None and head is not None:
        what = f"it holds no records, though its head names record {head[0]}"
    elif last is not None and head is None:
        what = f"its records 1..{last[0]} have no chain head"
    elif last is not None and head is not None:
        if head[0] < last[0]:
            what = f"{_span(head[0] + 1, last[0])} added after its head (record {head[0]})"
        elif head[0] > last[0]:
            what = f"{_span(last[0] + 1, head[0])} removed (its head names record {head[0]})"
        elif head[1] != last[1]:
            what = f"record {last[0]} is not the record its head was written for"
        elif head[3] is None:
            named = signed_evidence(conn, [anchors_file])
            if named is None:
                return True
            what = (f"its head (record {head[0]}) has no signature, though {named}: its "
                    "signatures were removed")
        elif not _signed_by_log_key(conn, log_id, head[0], head[1], head[2], head[3]):
            what = f"its head (record {head[0]}) is not signed by a key the log records"
    if what is not None:
        raise LogAltered(
            f"the pass log {path} was changed without the installation key: {what}. Nothing "
            f"was written: run `smp sessions verify --db {path}` to see what, and restore the "
            "log from a backup (or record in another data directory meanwhile)")
    from smpdevice.records.sqlite_heads import check_signed_heads

    check_signed_heads(conn, path, log_id, key)
    return False


def _span(first: int, last: int) -> str:
    return f"record {first} was" if first == last else f"records {first}..{last} were"


def has_receipts(anchors_file: Path) -> bool:
    """The anchors file holds a receipt, or its end cannot be read (damage: not "none")."""
    tail = read_tail(anchors_file)
    return tail.last != _NO_RECEIPT or bool(tail.torn.strip())


def checkpoint_figures(written_at: str, text: str) -> tuple[str | None, dict[str, Any] | None]:
    """(ended_at, figures) of a checkpoint row, each None when it is damaged."""
    try:
        figures = checked_figures(json.loads(text, parse_constant=_no_constant))
    except (ValueError, TypeError, RecursionError):
        figures = None
    try:
        datetime.fromisoformat(written_at)
    except (ValueError, TypeError):
        return None, figures
    return written_at, figures


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a figure")


def recovered_end(begin_body: str, begin_written_at: str, row: tuple[str, str] | None
                  ) -> tuple[str, dict[str, Any], bool]:
    """(ended_at, figures, damaged) of a pass crash recovery ends: its last checkpoint's, or
    its start and no figures without one (or with a damaged one)."""
    try:
        started_at = str(json.loads(begin_body)["started_at"])
    except (ValueError, TypeError, KeyError, RecursionError):
        started_at = begin_written_at  # the chain says what happened to that body
    if row is None:
        return started_at, PassStats().figures(), False
    ended_at, figures = checkpoint_figures(*row)
    if ended_at is None or figures is None:
        return started_at, PassStats().figures(), True
    return ended_at, figures, False


@dataclass(frozen=True)
class AnchorsTail:
    """The end of an anchors file: `last`, (seq, head hash) of its last whole receipt
    (`_NO_RECEIPT` when it holds none; None when its end cannot be read: damage left for
    verify to name); `torn`, the bytes after its last line break (a receipt whose append a
    power cut stopped), which start at byte `torn_at`."""

    last: tuple[int, str] | None
    torn: bytes = b""
    torn_at: int = 0


def read_tail(path: Path) -> AnchorsTail:
    """The end of the anchors file at `path` (a missing one holds no receipt)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return AnchorsTail(None if path.is_symlink() else _NO_RECEIPT)
    except OSError:
        return AnchorsTail(None)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return AnchorsTail(None)
        start = max(0, info.st_size - _TAIL_BYTES)
        os.lseek(fd, start, os.SEEK_SET)
        tail = os.read(fd, _TAIL_BYTES)
    except OSError:
        return AnchorsTail(None)
    finally:
        os.close(fd)
    whole, newline, torn = tail.rpartition(b"\n")
    if not newline:  # no line break in what was read: no whole line, or one too long
        return AnchorsTail(None if start else _NO_RECEIPT, torn, 0)
    lines = [line for line in whole.split(b"\n")[1 if start else 0:] if line.strip()]
    torn_at = start + len(whole) + 1
    if not lines:  # blank lines only; or its last whole line began before what was read
        return AnchorsTail(None if start else _NO_RECEIPT, torn, torn_at)
    try:
        data = json.loads(lines[-1].decode("utf-8"))
        seq, head_hash = data["seq"], data["head_hash"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return AnchorsTail(None, torn, torn_at)
    # A receipt's record is a JSON integer SQLite can hold and its head a string; anything
    # else (1e999 read as Infinity, 2.0, true, a number past 2**63) is damage, as above.
    if type(seq) is not int or not 0 < seq < 2 ** 63 or not isinstance(head_hash, str):
        return AnchorsTail(None, torn, torn_at)
    return AnchorsTail((seq, head_hash), torn, torn_at)


def missing_receipts(conn: sqlite3.Connection, log_id: str, anchors_file: Path
                     ) -> tuple[list[Receipt], tuple[int, int] | None] | None:
    """The receipts of the log's session closes kept from the anchors file, oldest first,
    and (where, its size) to cut the file first (a last line a power cut tore) or None; None
    when they are not to be completed. Only when the file ends with the receipt of one of the
    log's closes (or holds none) and what follows is the newest close alone (a crash between
    its commit and its append), or closes a refused append kept out (noted in `meta`, every
    run's): an emptied, cut-back or older file, or any other damage, is left for verify."""
    tail = read_tail(anchors_file)
    closes = conn.execute("SELECT seq, hash, key_fingerprint, signature FROM signed_heads "
                          "WHERE reason = 'session_close' ORDER BY seq").fetchall()
    if tail.last is None:
        return None
    held = [i for i, row in enumerate(closes) if tuple(row[:2]) == tail.last]
    if tail.last != _NO_RECEIPT and not held:
        return None  # it ends with a receipt this log does not hold
    after = closes[held[0] + 1:] if held else closes
    noted = conn.execute("SELECT value FROM meta WHERE name = ?", (_PENDING,)).fetchone()
    if len(after) > 1 and (noted is None or not str(noted[0]).isdigit()
                           or after[0][0] < int(noted[0])):
        return None  # more than the newest missing, and no refused append says why
    found = [_close_receipt(conn, log_id, *row) for row in after]
    if None in found:
        return None  # not a close this log signed: for verify to name
    receipts = [r for r in found if r is not None]
    if not tail.torn.strip():
        return receipts, None
    if receipts and anchor_line(receipts[0]).startswith(tail.torn):
        # The power cut stopped that very receipt's append: cut it, then append them all.
        return receipts, (tail.torn_at, tail.torn_at + len(tail.torn))
    return None


def _close_receipt(conn: sqlite3.Connection, log_id: str, seq: int, digest: str,
                   fingerprint: str, signature: str) -> Receipt | None:
    row = conn.execute("SELECT kind, session_id, hash, body FROM records WHERE seq = ?",
                       (seq,)).fetchone()
    if (row is None or row[0] != "session_close" or row[2] != digest
            or not _signed_by_log_key(conn, log_id, seq, digest, fingerprint, signature)):
        return None
    try:
        closed_at = str(json.loads(row[3]).get("closed_at", ""))
    except (ValueError, AttributeError, RecursionError):
        closed_at = ""
    return Receipt(row[1], seq, digest, signature, fingerprint, closed_at)


_PENDING = "anchors_pending"  # meta: the first close whose receipt a refused append kept out


class ReceiptCompletion:
    """Mixed into `PassLog`: append the receipts not yet in the anchors file, and put back at
    a writer's open those a crash, a power cut or a refused append (this run's or an earlier
    one's, noted in the log's `meta`) kept out."""

    anchors_path: Path
    anchored: list[Receipt]
    _conn: Any
    _log_id: str
    _unanchored: list[Receipt]
    _reading: Callable[[], AbstractContextManager[None]]
    _tx: Callable[[], AbstractContextManager[None]]
    _append_anchors: Callable[[], OSError | None]  # PassLog's (tests cut its append)
    _pending_noted = False  # the log's meta holds a note of receipts still to append
    _anchors_whole = False  # the anchors file holds every receipt but `_unanchored`'s

    def _complete_anchors(self) -> None:
        """At a writer's open (`missing_receipts`); a torn last line is cut first, held."""
        with self._reading():
            found = missing_receipts(self._conn, self._log_id, self.anchors_path)
            self._pending_noted = self._conn.execute(
                "SELECT 1 FROM meta WHERE name = ?", (_PENDING,)).fetchone() is not None
        if found is None:
            return  # cannot tell what the file lacks: left for verify to name
        lost, cut = found
        if lost:
            with anchors_held(self.anchors_path) as held:
                if cut is not None and not (held and cut_torn(self.anchors_path, *cut)):
                    return  # not held (a reader holds it): the next writer's open cuts it
                self._unanchored.extend(lost)
                self._anchors_whole = True
                self._append_anchors()
            self.anchored = [r for r in lost if r not in self._unanchored]
        else:
            self._anchors_whole = True
            self._append_anchors()  # nothing to append: clears a note no longer true

    def _note_pending(self, first: str | None) -> None:
        """Note (a first close whose receipt is still to append; an older note is kept) or
        clear it; a log that cannot be written then (a full disk) keeps what it had."""
        if (first is not None) == self._pending_noted:
            return
        try:
            with self._tx():
                if first is None:
                    self._conn.execute("DELETE FROM meta WHERE name = ?", (_PENDING,))
                else:
                    self._conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON "
                                       "CONFLICT (name) DO NOTHING", (_PENDING, first))
        except PassLogError:
            return
        self._pending_noted = first is not None


def cut_torn(path: Path, torn_at: int, size: int) -> bool:
    """Cut the anchors file back to `torn_at` (a torn last line), only while it is still
    `size` bytes long; never through a link. Whether it was cut."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False  # left as it is: verify names it, the next writer retries
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        os.ftruncate(fd, torn_at)
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def anchors_held(path: Path) -> Iterator[bool]:
    """Hold the anchors file exclusively (created if need be, never through a link) while a
    close commits and its receipt is appended; yields whether it is held. Best effort: a file
    that cannot be opened or locked (the append then says why), or a reader holding it past
    HOLD_WAIT_S, lets the close go on unheld."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        yield False
        return
    held = False
    try:
        deadline = time.monotonic() + HOLD_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.01)  # a reader holds it for the few ms it takes to read it
            except OSError:
                break
        yield held
    finally:
        os.close(fd)


_ONE_OFF_SECRET: list[bytes] = []


def pseudonym_secret(key: InstallationKey | None) -> bytes:
    """The secret of export pseudonyms: the installation key's (the same in every export of
    this installation); on a machine without that key (an auditor's), a random one made once
    per process and never stored, rather than a key created by a reader. Such pseudonyms hold
    within one export (every log of it) only, and map to no name without the clinic's key."""
    if key is None:
        path = key_dir() / KEY_FILE_NAME
        if path.is_file():  # never created here: readers write nothing
            key = InstallationKey._load(path, signing=False)  # pseudonyms only: never signs
    if key is not None:
        return key.pseudonym_secret()
    if not _ONE_OFF_SECRET:
        _ONE_OFF_SECRET.append(secrets.token_bytes(32))
    return _ONE_OFF_SECRET[0]
