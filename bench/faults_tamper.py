"""Fault campaign, tamper scenario (issue 12): someone who can write the data directory but
does not hold the installation key attacks the pass log; `verify` must catch every attack.

Each run writes a fresh, real pass log (2-4 sessions of 1-3 passes, signed heads, receipts in
the anchors file), checks that the untouched log verifies (no false alarm), attacks it at a
position drawn from the run's seed, and checks the log as `smp sessions verify` does with this
installation's key. The attacks:

- cut_tail       records after a random one deleted, the head rewritten to the new last record
                 (with a signed head's own signature copied in when the cut lands on one)
- head_dropped   the chain head table dropped or its row deleted, sometimes after a cut tail
- emptied        every record deleted (with the head, and the signed heads, or not)
- forged_record  a record at a random position rewritten (or one appended) with every hash
                 after it recomputed by the public `record_hash`, head and signed heads re-pointed
- rollback       the log file replaced by a copy taken after an earlier session
- dir_swapped    the whole data directory (log and anchors file) replaced by an older copy: the
                 log then agrees with itself, so only what lives elsewhere can tell: a receipt
                 the client kept (verify --receipt), and the clinic's central PostgreSQL store
                 (verify --against), which the installation synced after every session
- re_signed      a record rewritten, the chain re-hashed, the log's keys replaced by
                 an attacker's and every head and anchor re-signed; checked as an auditor without
                 the installation key does: verify --key <the installation's fingerprint>

The central store is a throw-away PostgreSQL (tests/smpdevice/postgres_server.py: initdb/pg_ctl
in /tmp as an unprivileged user); without the server binaries that check is skipped and said so.
Run through bench/faults.py (`bench/faults.py tamper`); tests/test_campaign.py runs it small.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.campaign_core import Result

ATTACKS = ("cut_tail", "head_dropped", "emptied", "forged_record", "rollback", "dir_swapped",
           "re_signed")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SESSION = dict(technician="campaign", session_kind="base_density", pen_serial="PEN-T",
               firmware_version="1.0.0", calibration_id="cal-t", profile_hash="0" * 64,
               screening={"open_sores": False}, simulated=True)


class _Run:
    """One run's installation: its key, its data directory and the receipts clients kept."""

    def __init__(self, base: Path, rng: random.Random, key: Any, url: str | None) -> None:
        self.dir = base / "data"
        self.dir.mkdir(parents=True)
        self.db = self.dir / "passlog.sqlite"
        self.rng, self.key, self.url = rng, key, url
        self.receipts: list[Any] = []
        self.snapshots: list[Path] = []  # the data directory after each session

    def sessions(self, count: int) -> None:
        from smpdevice.passlog import PassLog, PassStats
        from smpdevice.records.central import sync

        for _ in range(count):
            n = len(self.receipts)
            at = T0 + timedelta(hours=n)
            with PassLog(self.db, key=self.key) as log:
                sid = log.open_session(client_ref=f"C-{n:04d}", opened_at=at, **SESSION)
                for i in range(self.rng.randint(1, 3)):
                    stats = PassStats()
                    stats.counters(0, 0)
                    stats.add(0.3 + 0.1 * self.rng.random(), 90.0)
                    stats.counters(90, 10)
                    pid = log.begin_pass(sid, index=i, zone="top", depth_mm=0.4, speed_hz=90.0,
                                         duty_pct=40.0, period_ms=100.0, started_at=at)
                    log.end_pass(pid, outcome="completed", stats=stats, ended_at=at)
                self.receipts.append(log.close_session(sid, closed_at=at, summary={}))
            if self.url:
                with PassLog(self.db, readonly=True) as log:
                    sync(log, self.url, self.key)
            snap = self.dir.parent / f"snap{len(self.snapshots)}"
            shutil.copytree(self.dir, snap)  # closed cleanly: the WAL is checkpointed
            self.snapshots.append(snap)

    def audit(self, **kw: Any) -> Any:
        from smpdevice.passlog import PassLog

        with PassLog(self.db, readonly=True) as log:
            return log.audit(**({"trusted": {self.key.fingerprint: self.key.public}} | kw))

    def sql(self, *statements: str | tuple[str, tuple]) -> None:
        conn = sqlite3.connect(self.db, isolation_level=None)
        try:
            for statement in statements:
                text, args = statement if isinstance(statement, tuple) else (statement, ())
                conn.execute(text, args)
        finally:
            conn.close()

    def rows(self) -> list[tuple]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT seq, kind, session_id, pass_id, written_at, body, "
                                "prev_hash, hash FROM records ORDER BY seq").fetchall()
        finally:
            conn.close()

    def signed_seqs(self) -> list[int]:
        conn = sqlite3.connect(self.db)
        try:
            return [s for (s,) in conn.execute("SELECT seq FROM signed_heads ORDER BY seq")]
        finally:
            conn.close()


# --- the attacks: each returns a short description of where it struck -------------------------


def _cut_tail(run: _Run) -> str:
    last = len(run.rows())
    heads = [s for s in run.signed_seqs() if s < last]
    keep = run.rng.choice(heads) if heads and run.rng.random() < 0.5 else run.rng.randint(1,
                                                                                          last - 1)
    run.sql(("DELETE FROM records WHERE seq > ?", (keep,)),
            ("DELETE FROM signed_heads WHERE seq > ?", (keep,)),
            ("UPDATE chain_head SET seq = ?, hash = (SELECT hash FROM records WHERE seq = ?)",
             (keep, keep)))
    if keep in heads:  # the best an attacker can do: a signature that is valid for that head
        run.sql(("UPDATE chain_head SET key_fingerprint = (SELECT key_fingerprint FROM "
                 "signed_heads WHERE seq = ?), signature = (SELECT signature FROM signed_heads "
                 "WHERE seq = ?)", (keep, keep)))
        return f"cut after {keep}/{last}, a signed head's signature copied"
    return f"cut after {keep}/{last}"


def _head_dropped(run: _Run) -> str:
    last = len(run.rows())
    how = run.rng.choice(["DROP TABLE chain_head", "DELETE FROM chain_head"])
    if run.rng.random() < 0.5:
        keep = run.rng.randint(1, last - 1)
        run.sql(("DELETE FROM records WHERE seq > ?", (keep,)),
                ("DELETE FROM signed_heads WHERE seq > ?", (keep,)), how)
        return f"{how}, cut after {keep}/{last}"
    run.sql(how)
    return how


def _emptied(run: _Run) -> str:
    tables = run.rng.choice([("records",), ("records", "chain_head"),
                             ("records", "chain_head", "signed_heads")])
    run.sql(*(f"DELETE FROM {t}" for t in tables))
    return "emptied " + "+".join(tables)


def _rehash(run: _Run, rows: list[tuple], start: int) -> dict[int, str]:
    """Recompute every hash from record `start` on, as an attacker with `record_hash` can."""
    from smpdevice.records.chain import record_hash

    prev = rows[start - 2][7] if start > 1 else rows[0][6]
    hashes = {}
    statements: list[str | tuple[str, tuple]] = []
    for seq, kind, sid, pid, at, body, _p, _h in rows[start - 1:]:
        digest = record_hash(seq, kind, sid, pid, at, body, prev)
        statements.append(("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                           (body, prev, digest, seq)))
        hashes[seq], prev = digest, digest
    last = rows[-1][0]
    statements.append(("UPDATE chain_head SET seq = ?, hash = ?", (last, hashes[last])))
    statements += [("UPDATE signed_heads SET hash = ? WHERE seq = ?", (h, s))
                   for s, h in hashes.items()]
    run.sql(*statements)
    return hashes


def _deeper(rows: list[tuple], position: int) -> list[tuple]:
    """The rows with record `position`'s body changed (a depth, or a note where none)."""
    body = json.loads(rows[position - 1][5])
    if "depth_mm" in body:
        body["depth_mm"] = 0.9
    else:
        body["forged"] = True
    changed = list(rows[position - 1])
    changed[5] = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return [*rows[:position - 1], tuple(changed), *rows[position:]]


def _forged_record(run: _Run) -> str:
    rows = run.rows()
    if run.rng.random() < 0.3:  # appended at the end
        from smpdevice.records.chain import record_hash

        seq, prev = rows[-1][0] + 1, rows[-1][7]
        forged = (seq, "session_open", "Sforged", None, T0.isoformat(), "{}", prev)
        digest = record_hash(*forged)
        run.sql(("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*forged, digest)),
                ("UPDATE chain_head SET seq = ?, hash = ?", (seq, digest)))
        return f"appended record {seq}"
    position = run.rng.randint(1, len(rows))
    _rehash(run, _deeper(rows, position), position)
    return f"rewrote record {position}/{len(rows)}, re-hashed"


def _rollback(run: _Run) -> str:
    older = run.rng.randrange(len(run.snapshots) - 1)
    for suffix in ("-wal", "-shm"):
        Path(str(run.db) + suffix).unlink(missing_ok=True)
    shutil.copyfile(run.snapshots[older] / run.db.name, run.db)
    return f"log file of session {older + 1}/{len(run.snapshots)}"


def _dir_swapped(run: _Run) -> str:
    older = run.rng.randrange(len(run.snapshots) - 1)
    shutil.rmtree(run.dir)
    shutil.copytree(run.snapshots[older], run.dir)
    return f"data directory of session {older + 1}/{len(run.snapshots)}"


def _re_signed(run: _Run) -> str:
    from smpdevice.records.keys import InstallationKey
    from smpdevice.records.signing import anchors_path, head_statement

    thief = InstallationKey.generate()
    rows = run.rows()
    position = run.rng.randint(1, len(rows))
    hashes = {r[0]: r[7] for r in rows} | _rehash(run, _deeper(rows, position), position)
    conn = sqlite3.connect(run.db, isolation_level=None)
    try:
        log_id = conn.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()[0]
        sign = (lambda seq: thief.sign(head_statement(log_id, seq, hashes[seq])))  # noqa: E731
        conn.execute("DELETE FROM signing_keys")
        conn.execute("INSERT INTO signing_keys VALUES (?, ?, ?)",
                     (thief.fingerprint, thief.public.hex, T0.isoformat()))
        last = rows[-1][0]
        conn.execute("UPDATE chain_head SET key_fingerprint = ?, signature = ?",
                     (thief.fingerprint, sign(last)))
        for (seq,) in conn.execute("SELECT seq FROM signed_heads").fetchall():
            conn.execute("UPDATE signed_heads SET key_fingerprint = ?, signature = ? "
                         "WHERE seq = ?", (thief.fingerprint, sign(seq), seq))
    finally:
        conn.close()
    path = anchors_path(run.db)
    anchors = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for anchor in anchors:
        anchor.update(head_hash=hashes[anchor["seq"]], key_fingerprint=thief.fingerprint,
                      signature=sign(anchor["seq"]))
    path.write_text("".join(json.dumps(a, sort_keys=True) + "\n" for a in anchors))
    return f"rewrote record {position}/{len(rows)}, re-signed by another key"


# --- the scenario ---------------------------------------------------------------------------


def _named_by(problem: str) -> str:
    """Which part of the audit named the attack: the words of its first problem."""
    for words, part in (("receipt", "anchor"), ("central store", "central store"),
                        ("signature", "signature"), ("chain head is missing", "head"),
                        ("its head says", "head"), ("head", "head")):
        if words in problem:
            return part
    return "chain"


def _checks(attack: str, run: _Run) -> dict[str, str | None]:
    """Each way this attack is checked -> the problem found (None: said ok)."""
    from smpdevice.passlog import PassLog
    from smpdevice.records.central import compare

    if attack == "re_signed":  # an auditor's machine: no installation key, --key FINGERPRINT
        found = run.audit(trusted=None, trusted_fingerprints=[run.key.fingerprint])
        return {"verify --key": None if found.ok else str(found.problem)}
    if attack != "dir_swapped":
        found = run.audit()
        return {"verify": None if found.ok else str(found.problem)}
    local = run.audit()
    later = [r for r in run.receipts if r.seq > local.count]
    kept = run.audit(receipts=[("receipt kept by the client", run.rng.choice(later))])
    checks = {"verify (local only)": None if local.ok else str(local.problem),
              "verify --receipt": None if kept.ok else str(kept.problem)}
    if run.url:
        with PassLog(run.db, readonly=True) as log:
            checks["verify --against"] = compare(log, run.url).problem
    return checks


@contextlib.contextmanager
def _central() -> Any:
    """A throw-away PostgreSQL URL, or None (and why) when the server binaries are absent."""
    try:
        from tests.smpdevice.postgres_server import INSTALL_HINT, running_server, server_bindir
    except ImportError:
        yield None, "tests/smpdevice/postgres_server.py not found (run from the repository)"
        return
    bindir = server_bindir()
    if bindir is None:
        yield None, f"no PostgreSQL server binaries (initdb, pg_ctl): {INSTALL_HINT}"
        return
    server = running_server(bindir)
    try:
        url = server.__enter__()
    except RuntimeError as exc:  # the server would not start: say so, run the rest
        yield None, f"the PostgreSQL server did not start ({str(exc)[:200]})"
        return
    try:
        yield url, None
    finally:
        server.__exit__(None, None, None)


def scenario_tamper(runs: int = 40, seed: int = 81, central: bool = True) -> Result:
    from smpdevice.records.keys import InstallationKey

    res = Result("tamper", runs * len(ATTACKS))
    t0 = time.perf_counter()
    key = InstallationKey.generate()
    caught: dict[str, dict[str, int]] = {a: {} for a in ATTACKS}
    named_by: dict[str, Counter[str]] = {a: Counter() for a in ATTACKS}
    false_alarms = 0
    details: list[str] = []
    with contextlib.ExitStack() as stack:
        url, why_not = stack.enter_context(_central()) if central else (None, "not asked")
        if url is None:
            details.append(f"central store check skipped: {why_not}")
        for attack in ATTACKS:
            for i in range(runs):
                rng = random.Random(seed * 1_000_003 + ATTACKS.index(attack) * 10_007 + i)
                with tempfile.TemporaryDirectory(prefix="smp-tamper-") as tmp:
                    run = _Run(Path(tmp), rng, key, url if attack == "dir_swapped" else None)
                    run.sessions(rng.randint(2, 4))
                    if not run.audit().ok:
                        false_alarms += 1
                        res.fail(f"{attack} run {i}: the untouched log does not verify: "
                                 f"{run.audit().problem}")
                        continue
                    where = globals()[f"_{attack}"](run)
                    for check, problem in _checks(attack, run).items():
                        counts = caught[attack]
                        counts[check] = counts.get(check, 0) + (problem is not None)
                        if problem is not None:
                            named_by[attack][_named_by(problem)] += 1
                        if i < 2:
                            details.append(f"{attack} ({where}) {check}: "
                                           f"{problem or 'ok (not caught)'}")
                        if problem is None and check != "verify (local only)":
                            res.fail(f"{attack} run {i} ({where}): {check} said ok")
    summary: list[str] = []
    for attack, counts in caught.items():
        for check, count in counts.items():
            res.figures[f"{attack}: {check} caught"] = f"{count}/{runs}"
        summary.append(f"{attack} named by: " + ", ".join(
            f"{part} {n}" for part, n in named_by[attack].most_common()))
    res.figures["false alarms on untouched logs"] = false_alarms
    if url is None:
        res.figures["central store"] = "skipped (see details)"
    res.details = summary + details  # type: ignore[attr-defined]
    res.seconds = time.perf_counter() - t0
    return res
