"""Review 15 F1: a writer never acts on session records changed without the key.

integration.md: a writer "never signs over records someone changed without the key"; README:
"The plan comes from the session's header (the profile's content and hash)". The resume
checked the header's profile against the hash in the same body (a plain SHA-256 anyone can
recompute) and never the record against the chain: an edited header (hairline 0.32 -> 0.45 mm,
a 2 s pass -> 9 s) was played and signed on; a completed pass's end edited to `stopped` was
played again. A writer's `PassLog.session` now walks the session's records (and every one after
them) against the chain and the signed head first (`records.session_chain`): `LogAltered`,
exit 3, naming the record; `smp run --resume` and `--close` (and the service's resume and
close, which read the session the same way) refuse.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.conftest import fit_points
from tests.smpdevice.records.test_records_exports import session_by

ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "examples" / "session1_base_density.yaml"
SCREENING = ROOT / "examples" / "screening_clear.yaml"


def _forge_header(db: Path) -> str:
    """Rewrite the session header's profile and its hash, as anyone can; return the id."""
    with sqlite3.connect(db) as conn:
        seq, sid, body = conn.execute("SELECT seq, session_id, body FROM records "
                                      "WHERE kind = 'session_open'").fetchone()
        header = json.loads(body)
        profile = header["profile"]
        profile["zones"]["hairline"]["depth_mm"] = 0.45  # planned 0.32
        profile["plan"][2]["duration_s"] = 9.0  # planned 2
        profile["skin"]["epidermis_mm"] = 0.01  # measured 0.09
        header["profile_hash"] = hashlib.sha256(json.dumps(
            profile, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()).hexdigest()
        conn.execute("UPDATE records SET body = ? WHERE seq = ?",
                     (json.dumps(header, separators=(",", ":"), sort_keys=True), seq))
    conn.close()
    return sid


def test_a_resume_refuses_a_header_the_chain_says_was_altered(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    model = PenModel(seed=0)
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    jammed = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", "--screening",
                                       str(SCREENING), "--port", "pensim://?faults=jam@1"])
    assert jammed.exit_code == 4, jammed.output  # left open by the fault
    db = data / "passlog.sqlite"
    sid = _forge_header(db)
    verified = CliRunner().invoke(main, ["sessions", "verify"])
    assert verified.exit_code == 1 and "altered" in verified.output, verified.output

    resumed = CliRunner().invoke(main, ["run", "--resume", sid, "-t", "ana", "--screening",
                                        str(SCREENING), "--port", "pensim://"])
    with PassLog(db, readonly=True) as log:
        played = [(p.zone, p.depth_mm) for p in log.passes(sid)]
    assert ("hairline", 0.45) not in played, f"the altered plan was played: {played}"
    assert resumed.exit_code == 3, resumed.output
    assert "record 1" in resumed.output and "smp sessions verify" in resumed.output
    closed = CliRunner().invoke(main, ["run", "--resume", sid, "--close", "--port", "pensim://"])
    assert closed.exit_code == 3 and "record 1" in closed.output, closed.output
    with PassLog(db, readonly=True) as log:
        assert log.session(sid).closed_at is None, "no close was signed over the edit"
        assert log.resumptions(sid) == []


def test_a_resume_never_plays_again_a_pass_the_chain_says_completed(tmp_path, monkeypatch):
    """The same gap, and the needle: a completed pass's end record edited to `stopped` with no
    dots (no hash to recompute at all) is played again in full by the resume, doubling the
    dots in that zone; verify names the record as altered."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    model = PenModel(seed=0)
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    jammed = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", "--screening",
                                       str(SCREENING), "--port", "pensim://?faults=jam@4"])
    assert jammed.exit_code == 4, jammed.output
    db = data / "passlog.sqlite"
    with sqlite3.connect(db) as conn:
        seq, sid, body = conn.execute("SELECT seq, session_id, body FROM records WHERE "
                                      "kind = 'pass_end' ORDER BY seq LIMIT 1").fetchone()
        end = json.loads(body)
        assert end["outcome"] == "completed"  # the first pass, done before the jam
        end.update(outcome="stopped", stats={**end["stats"], "impressions": 0, "strokes": 0})
        conn.execute("UPDATE records SET body = ? WHERE seq = ?", (json.dumps(end), seq))
    conn.close()
    assert CliRunner().invoke(main, ["sessions", "verify"]).exit_code == 1

    CliRunner().invoke(main, ["run", "--resume", sid, "-t", "ana", "--screening",
                              str(SCREENING), "--port", "pensim://"])
    with PassLog(db, readonly=True) as log:
        first_pass = [p for p in log.passes(sid) if p.index == 0]
    assert len(first_pass) == 1, f"pass 1 was played again: {len(first_pass)} records of it"


def _two_sessions(db: Path) -> tuple[str, str]:
    """A closed session A (two passes) and an open session B after it (one pass)."""
    with PassLog(db) as log:
        first = session_by(log, "ana", "C-1")
        log.close_session(first, closed_at=datetime.now(UTC), summary={})
        return first, session_by(log, "ana", "C-2", passes=1)


def _edit(db: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(db)
    with conn:
        assert conn.execute(sql, args).rowcount == 1
    conn.close()


def test_a_pass_grafted_from_an_earlier_session_is_refused_by_a_writer(tmp_path):
    """A record before the session's opening, its session id edited to the session's: read
    as one of its passes (a reader shows it), so a writer walks from it and refuses."""
    db = tmp_path / "passlog.sqlite"
    _, second = _two_sessions(db)
    _edit(db, "UPDATE records SET session_id = ? WHERE seq = 2", second)  # A's first pass
    with PassLog(db, readonly=True) as log:
        assert len(log.session(second).passes) == 2, "the grafted pass is read as B's"
    with PassLog(db) as log, pytest.raises(LogAltered, match=r"record 2\b.*smp sessions verify"):
        log.session(second[:6])  # a prefix too


def test_a_writer_reads_a_session_whose_own_records_hold(tmp_path):
    """An edit in an earlier session's records only (before this one's first record) does
    not stop this session; an edit in any record from its first to the log's end does
    (here its last pass's end, the log's last record: the writer's open does not see it)."""
    db = tmp_path / "passlog.sqlite"
    first, second = _two_sessions(db)
    _edit(db, "UPDATE records SET body = replace(body, '0.4', '0.5') WHERE seq = 2")
    with PassLog(db) as log:
        assert log.session(second).closed_at is None  # B's records all hold
        with pytest.raises(LogAltered, match="record 2"):
            log.session(first)
    with PassLog(db) as log:
        last = log.head()[0]
    _edit(db, "UPDATE records SET body = replace(body, 'completed', 'stopped') WHERE seq = ?",
          last)  # B's pass_end, the log's last record
    with PassLog(db, readonly=True) as log:
        assert log.session(second).passes[0].outcome == "stopped"
    with pytest.raises(LogAltered), PassLog(db) as log:
        log.session(second)
