"""`smp sessions verify` where the installation key is absent (review r09).

An auditor's machine, a backup or another OS user has no installation key. The old code then
trusted the keys the log records itself, so a log rewritten and re-signed with an attacker's
key (chain re-hashed, `signing_keys` replaced, heads and anchors re-signed) printed "ok".
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.chain import GENESIS_HASH, record_hash
from smpdevice.records.keys import InstallationKey, KeyArgumentError, parse_trusted_key
from smpdevice.records.signing import anchors_path, head_statement
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

REAL = InstallationKey.generate()


def genuine_log(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=REAL) as log:
        for _ in range(2):
            sid = open_session(log)
            for i in range(2):
                log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(),
                             ended_at=T0)
            log.close_session(sid, closed_at=T0, summary={})
    return db


def forge(db, *, label: str | None = None) -> InstallationKey:
    """r09: rewrite the first pass (depth 0.9 mm), re-hash the chain, replace the log's keys
    with an attacker's (stored under `label` if given) and re-sign every head and anchor."""
    thief = InstallationKey.generate()
    conn = sqlite3.connect(db, isolation_level=None)
    rows = conn.execute("SELECT seq, kind, session_id, pass_id, written_at, body FROM records "
                        "ORDER BY seq").fetchall()
    first_pass = next(r[0] for r in rows if r[1] == "pass_begin")
    prev, hashes = GENESIS_HASH, {}
    for seq, kind, sid, pid, at, body in rows:
        if seq == first_pass:
            body = json.dumps({**json.loads(body), "depth_mm": 0.9}, sort_keys=True,
                              separators=(",", ":"))
        digest = record_hash(seq, kind, sid, pid, at, body, prev)
        conn.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (body, prev, digest, seq))
        hashes[seq], prev = digest, digest
    log_id = conn.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()[0]
    fpr = label or thief.fingerprint
    conn.execute("DELETE FROM signing_keys")
    conn.execute("INSERT INTO signing_keys VALUES (?, ?, ?)", (fpr, thief.public.hex, T0))
    last = rows[-1][0]
    conn.execute("UPDATE chain_head SET hash = ?, key_fingerprint = ?, signature = ?",
                 (hashes[last], fpr, thief.sign(head_statement(log_id, last, hashes[last]))))
    for (seq,) in conn.execute("SELECT seq FROM signed_heads").fetchall():
        conn.execute("UPDATE signed_heads SET hash = ?, key_fingerprint = ?, signature = ? "
                     "WHERE seq = ?",
                     (hashes[seq], fpr, thief.sign(head_statement(log_id, seq, hashes[seq])),
                      seq))
    conn.close()
    path = anchors_path(db)
    lines = []
    for line in path.read_text().splitlines():
        anchor = json.loads(line)
        anchor.update(head_hash=hashes[anchor["seq"]], key_fingerprint=fpr,
                      signature=thief.sign(head_statement(log_id, anchor["seq"],
                                                          hashes[anchor["seq"]])))
        lines.append(json.dumps(anchor, sort_keys=True))
    path.write_text("\n".join(lines) + "\n")
    return thief


@pytest.fixture
def no_key_here(tmp_path, monkeypatch):
    """An auditor's machine: a key directory that holds no installation key."""
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "auditor-keys"))


def verify(db, *args: str):
    return CliRunner().invoke(main, ["sessions", "verify", "--db", str(db), *args])


def test_without_a_key_verify_refuses_rather_than_trust_the_logs_own_keys(tmp_path,
                                                                          no_key_here):
    db = genuine_log(tmp_path)
    forge(db)
    result = verify(db)
    assert result.exit_code == 2, result.output  # the old code: "ok: ..." and exit 0
    assert "ok:" not in result.output
    assert "cannot check signatures" in result.output and "--key FINGERPRINT" in result.output
    assert "smp keys show" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "auditor-keys").exists()  # verify made no key of its own
    (tmp_path / "g").mkdir()
    assert verify(genuine_log(tmp_path / "g")).exit_code == 2  # a genuine log alike


def test_with_the_real_installations_key_the_forgery_is_refused(tmp_path, no_key_here):
    db = genuine_log(tmp_path)
    genuine = verify(db, "--key", REAL.fingerprint)
    assert genuine.exit_code == 0, genuine.output
    assert f"signed by the key(s) named by --key {REAL.fingerprint}" in genuine.output
    thief = forge(db)
    for named in (REAL.fingerprint, REAL.fingerprint.replace(":", "").upper(), REAL.public.hex):
        result = verify(db, "--key", named)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("broken link: record 1: not covered by a valid "
                                        "signature")
        assert f"signed by key {thief.fingerprint}, which is not a trusted key" in result.output


def test_with_the_forgers_key_it_is_accepted_for_that_key_only(tmp_path, no_key_here):
    """Documented: --key trusts whom you name. The output names that key, so an auditor who
    compares it with the installation's `smp keys show` sees it is not theirs."""
    db = genuine_log(tmp_path)
    thief = forge(db)
    result = verify(db, "--key", thief.fingerprint)
    assert result.exit_code == 0, result.output
    assert f"signed by the key(s) named by --key {thief.fingerprint} " in result.output
    assert REAL.fingerprint not in result.output


def test_a_forgers_key_labelled_with_the_real_fingerprint_is_known_by_its_own(tmp_path,
                                                                               no_key_here):
    db = genuine_log(tmp_path)
    thief = forge(db, label=REAL.fingerprint)  # signing_keys says REAL, holds the thief's key
    result = verify(db, "--key", REAL.fingerprint)
    assert result.exit_code == 1, result.output
    assert "does not record the public key of --key" in result.output
    assert "record 1: not covered by a valid signature" in result.output
    consistent = verify(db, "--trust-log-keys")  # the old code: ok, "signed by ... REAL"
    assert consistent.exit_code == 1, consistent.output
    assert f"signed by key {REAL.fingerprint}, which is not recorded in the log" \
        in consistent.output
    assert thief.fingerprint != REAL.fingerprint


def test_the_installations_own_key_still_refuses_the_forgery(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    own = InstallationKey.load_or_create()
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=own) as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        log.close_session(sid, closed_at=T0, summary={})
    assert verify(db).exit_code == 0
    forge(db)
    result = verify(db)
    assert result.exit_code == 1 and "--key" in result.output


@pytest.mark.parametrize("bad", ["", "xyz", "1a2b:3c4d", "g" * 32, "a" * 33, "a" * 200,
                                 "\x00" * 32])
def test_a_bad_key_argument_is_named(bad, tmp_path, no_key_here):
    with pytest.raises(KeyArgumentError, match="is not a key fingerprint"):
        parse_trusted_key(bad)
    result = verify(genuine_log(tmp_path), "--key", bad)
    assert result.exit_code == 2 and "--key" in result.output
    assert "Traceback" not in result.output


def test_key_and_trust_log_keys_exclude_each_other(tmp_path, no_key_here):
    result = verify(genuine_log(tmp_path), "--key", REAL.fingerprint, "--trust-log-keys")
    assert result.exit_code == 2 and "exclude each other" in result.output


@given(raw=st.binary(min_size=16, max_size=16), sep=st.sampled_from(["", ":", " ", "\t"]),
       upper=st.booleans())
def test_any_way_of_writing_a_fingerprint_names_the_same_key(raw, sep, upper):
    canonical = ":".join(raw.hex()[i:i + 4] for i in range(0, 32, 4))
    written = sep.join(raw.hex()[i:i + 4] for i in range(0, 32, 4))
    assert parse_trusted_key(written.upper() if upper else written) == canonical


@given(st.text(max_size=120))
def test_anything_else_is_refused_with_a_typed_error(text):
    digits = "".join(c for c in text if not c.isspace() and c != ":")
    try:
        parsed = parse_trusted_key(text)
    except KeyArgumentError as exc:
        assert "--key" in str(exc) and "32 hex digits" in str(exc)
        return
    assert len(digits) in (32, 64) and all(c in "0123456789abcdefABCDEF" for c in digits)
    assert isinstance(parsed, str) or len(parsed.hex) == 64
