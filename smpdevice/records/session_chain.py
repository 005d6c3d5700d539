"""A writer's check of one session's records before it acts on them (resume, close).

A session's header holds its plan (the profile and its hash) and its pass records say what was
done; a resume plays what they say is left and a close signs a summary of them. Anyone with
the files but not the key can edit a record's body (and recompute `profile_hash`, a plain
SHA-256). The writer's open checks only the end of the log (`sqlite_recovery.check_head`); a
full walk at every open would cost a second per million records. So before a writer hands out
a session (`PassLog.session`), the records from the first one that belongs to it to the last
one of the log are walked (recomputed hashes, `prev_hash` links, no gap) and must end at the
signed head, its signature valid: every record the session is read from is then the one the
key signed. Otherwise `LogAltered` (exit 3), naming the first record that does not hold.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smpdevice.outcomes import command
from smpdevice.records.chain import BrokenLink, verify_rows
from smpdevice.records.sqlite_recovery import LogAltered, _signed_by_log_key
from smpdevice.records.sqlite_signing import _rows

# Every record a session is read from: its own (session_id) and its passes' ends, which are
# joined by pass id alone (an edited pass id elsewhere would count as one of its passes).
_FIRST = ("SELECT min((SELECT min(seq) FROM records WHERE session_id = ?), "
          "coalesce((SELECT min(seq) FROM records WHERE kind = 'pass_end' AND pass_id IN "
          "(SELECT pass_id FROM records WHERE session_id = ? AND kind = 'pass_begin')), "
          "9223372036854775807))")  # two index look-ups (an OR would scan every record)


def check_session(conn: sqlite3.Connection, session_id: str, path: Path, log_id: str) -> None:
    """Raise LogAltered when a record `session_id` (an id or a unique prefix) is read from,
    or one after it, does not hold against the chain and the signed head. An unknown or
    ambiguous id is left for the caller's lookup to name."""
    if not isinstance(session_id, str) or not session_id:
        return  # the lookup refuses it by name
    found = conn.execute("SELECT session_id FROM records WHERE kind = 'session_open' AND "
                         "substr(session_id, 1, ?) = ? LIMIT 2",
                         (len(session_id), session_id)).fetchall()
    if len(found) != 1:
        return
    sid = found[0][0]
    first = conn.execute(_FIRST, (sid, sid)).fetchone()[0]
    start = conn.execute("SELECT prev_hash FROM records WHERE seq = ?", (first,)).fetchone()
    walk = verify_rows(_rows(conn, first), start_seq=first, start_hash=start[0])
    broken = walk.broken
    if broken is None:
        head = conn.execute("SELECT seq, hash, key_fingerprint, signature FROM chain_head"
                            ).fetchone()
        if head is None or (head[0], head[1]) != (walk.count, walk.head_hash):
            broken = BrokenLink(walk.count, "the log does not end at its head: records were "
                                            "added, removed or rewritten at its end")
        elif not _signed_by_log_key(conn, log_id, head[0], head[1], head[2], head[3]):
            broken = BrokenLink(head[0], "its head is not signed by a key the log records")
    if broken is not None:
        raise LogAltered(
            f"session {sid} is neither resumed nor closed: the pass log {path} was changed "
            f"without the installation key: {str(broken).rstrip('.')}. Nothing was played or "
            f"written: check it with {command('smp', 'sessions', 'verify', '--db', str(path))} "
            "and restore the log from a backup")
