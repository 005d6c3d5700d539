"""Signed chain heads, receipts and the anchors file.

A **head** is (record number, that record's hash). The writer signs the head with the
installation key (`smpdevice.records.keys`):
- at every commit, in the single `chain_head` row (so the newest record is always covered);
- and permanently, in `signed_heads`, at every session close, every `SIGN_EVERY_RECORDS`
  records, and once when an older log is first opened by a keyed writer ("adopted").
The signed statement binds the head to its log (`log_id`), so a head cannot be moved to another
log. Verifying checks the permanent heads (a few thousand signatures for a million records)
plus the current one, so it stays fast.

A **receipt** is a closed session's signed head, short enough for the aftercare sheet:
`SMP-RECEIPT/1 <session id> #<record number> <head hash> <signature>`. Each one is also
appended to the **anchors file** beside the log (`passlog.anchors.jsonl`, 0600). A log cut
back, emptied or replaced by an older copy no longer holds the anchored heads. The file is named
by the log's stem, so a new log is refused where another log of that stem would share it
(`sqlite_schema.refuse_shared_anchors`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from smpdevice.errors import SmpError

SIGN_EVERY_RECORDS = 512
# A receipt's line is about 330 bytes; a longer one is damage, refused before it is parsed.
MAX_ANCHOR_LINE_BYTES = 4096
RECEIPT_PREFIX = "SMP-RECEIPT/1"
# Whitespace may break the hash and the signature anywhere (a sheet printed or shown narrow):
# each is matched character by character with optional whitespace between, then joined.
_RECEIPT = re.compile(
    r"SMP-RECEIPT/1\s+(?P<session_id>S[0-9a-f]{16})\s+#(?P<seq>[1-9][0-9]{0,15})\s+"
    r"(?P<head_hash>(?:[0-9a-f]\s*){63}[0-9a-f])\s*"
    r"(?P<signature>(?:[A-Za-z0-9_-]\s*){85}[A-Za-z0-9_-])(?![A-Za-z0-9_-])")


class ReceiptError(SmpError):
    """A receipt that cannot be read."""


def head_statement(log_id: str, seq: int, head_hash: str) -> bytes:
    """What a head signature covers."""
    return f"smpdevice-head/1\n{log_id}\n{seq}\n{head_hash}".encode()


@dataclass(frozen=True)
class Receipt:
    """A signed head a client or the clinic keeps outside the log."""

    session_id: str
    seq: int
    head_hash: str
    signature: str
    key_fingerprint: str = ""
    closed_at: str = ""

    def text(self) -> str:
        return f"{RECEIPT_PREFIX} {self.session_id} #{self.seq} {self.head_hash} {self.signature}"

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """The receipt in `text` (surrounding words and line breaks are ignored)."""
        flat = " ".join(text.split())
        match = _RECEIPT.search(flat[:65536])
        if match is None:
            raise ReceiptError(
                f"no receipt found in {flat[:80]!r}: a receipt reads "
                f"'{RECEIPT_PREFIX} S<16 hex> #<record> <64 hex> <86-character signature>', "
                "as printed on the aftercare sheet")
        return cls(match["session_id"], int(match["seq"]), "".join(match["head_hash"].split()),
                   "".join(match["signature"].split()))


def anchors_path(log_path: Path) -> Path:
    """`passlog.sqlite` -> `passlog.anchors.jsonl`, in the same directory."""
    return log_path.with_name(log_path.stem + ".anchors.jsonl")


def anchor_line(receipt: Receipt) -> bytes:
    """A receipt's line in the anchors file, line break included."""
    return (json.dumps(asdict(receipt), sort_keys=True) + "\n").encode()


def append_anchor(path: Path, receipt: Receipt) -> None:
    """Append one receipt durably to the anchors file (created 0600 whatever the umask), on a
    line of its own: after a last line left without its line break (damage, left for verify
    to name), a line break first, so the receipt is never glued onto it. Never through a
    symbolic link: one could point the append at the log, its key or any other file (an
    OSError that says so)."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, "it is a symbolic link, never appended through: put the "
                          "file itself there", str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "it is not a regular file", str(path))
        if info.st_nlink > 1:  # another name of another file: never appended into it
            raise OSError(errno.EMLINK, "it is a hard link, never appended through: put a "
                          "copy of its own there", str(path))
        os.fchmod(fd, 0o600)
        ended = info.st_size == 0 or os.pread(fd, 1, info.st_size - 1) == b"\n"
        os.write(fd, (b"" if ended else b"\n") + anchor_line(receipt))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_anchors(path: Path) -> list[Receipt]:
    """Every receipt in an anchors file, in order; a damaged line is an error naming it.

    Only a regular file is read (a FIFO or /dev/zero is refused at once, opened non-blocking),
    line by line, each line at most MAX_ANCHOR_LINE_BYTES: a file of any damage (bytes that
    are not UTF-8, a line nested deep, no line breaks at all) is one ReceiptError."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ReceiptError(f"the anchors file {path} cannot be opened ({exc.strerror}); check "
                           "the path and its permissions") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ReceiptError(f"the anchors file {path} is not a regular file (a directory, "
                           "device, pipe or socket): give the path of a .anchors.jsonl file")
    with os.fdopen(fd, "rb") as handle:
        return list(_receipts(handle, path))


def _receipts(handle: BinaryIO, path: Path) -> Iterator[Receipt]:
    number = 0
    while raw := handle.readline(MAX_ANCHOR_LINE_BYTES + 1):
        number += 1
        if not raw.strip():
            continue
        try:
            if len(raw) > MAX_ANCHOR_LINE_BYTES:
                raise ValueError(f"longer than {MAX_ANCHOR_LINE_BYTES} bytes")
            data = json.loads(raw.decode("utf-8"))  # UnicodeDecodeError is a ValueError
            seq = data["seq"]
            if type(seq) is not int or not 0 < seq < 2**63:  # not 1e999, true or "12"
                raise ValueError(f"its seq {str(seq)[:40]} is not a record number")
            receipt = Receipt(str(data["session_id"]), seq,
                              str(data["head_hash"]), str(data["signature"]),
                              str(data.get("key_fingerprint", "")),
                              str(data.get("closed_at", "")))
            Receipt.parse(receipt.text())  # the same strict shape as a printed receipt
        except (ValueError, KeyError, TypeError, RecursionError, ReceiptError) as exc:
            why = str(exc)[:120] or type(exc).__name__
            raise ReceiptError(f"line {number} of the anchors file {path} is damaged "
                               f"({why}); restore the file from a backup") from None
        yield receipt



def anchors_argument(anchors: object) -> bool | Path | list[tuple[str, Receipt]]:
    """`PassLog.audit`'s `anchors`: True, False, an anchors file (a str or os.PathLike path)
    or (source, Receipt) pairs. Anything else is InvalidArgument before anything is read (a
    str path was read as pairs of its characters)."""
    if isinstance(anchors, bool):
        return anchors
    if isinstance(anchors, (str, os.PathLike)):
        return Path(anchors)
    return receipts_argument(anchors, "anchors", "True, False, an anchors file's path, or ")


def receipts_argument(receipts: object, name: str = "receipts",
                      others: str = "") -> list[tuple[str, Receipt]]:
    """(source, Receipt) pairs, or InvalidArgument naming what was given."""
    if not isinstance(receipts, (str, bytes)) and isinstance(receipts, Sequence | Iterator):
        pairs = list(receipts)
        if all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Receipt)
               for p in pairs):
            return [(str(source), receipt) for source, receipt in pairs]
    from smpdevice.checks import InvalidArgument

    raise InvalidArgument(f"{name} must be {others}a sequence of (source, Receipt) pairs; it "
                          f"is a {type(receipts).__name__}: nothing was checked")
