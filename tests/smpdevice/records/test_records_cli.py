"""The records' presentation in the CLI: `smp sessions ...` and `smp calibrations ...`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.calibration.test_calibration_store import _old_file, _older_json
from tests.smpdevice.records.test_passlog import T0, begin, make_v1_file, open_session, stats


def run(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_sessions_list_and_show_say_whether_a_session_was_simulated(tmp_path):
    db = tmp_path / "passlog.sqlite"
    make_v1_file(db)  # one session from an older log: unknown
    with PassLog(db) as log:
        real = open_session(log, "C-REAL", simulated=False)
        sim = open_session(log, "C-SIM", simulated=True, envelope=None)
        log.end_pass(begin(log, sim), outcome="completed", stats=stats(), ended_at=T0)
    listing = run(["sessions", "list", "--db", str(db)])
    assert "simulated" in listing
    rows = {line.split("│")[1].strip(): line for line in listing.splitlines() if "│" in line}
    assert "unknown" in rows["Sold"] and " no " in rows[real] and " yes " in rows[sim]
    shown = run(["sessions", "show", sim, "--db", str(db)])
    assert "simulated" in shown and "yes" in shown and "envelope sha256  not recorded" in shown
    assert f"envelope sha256  {'e' * 64}" in run(["sessions", "show", real, "--db", str(db)])
    data = json.loads(run(["sessions", "show", sim, "--db", str(db), "--json"]))
    assert data["simulated"] is True and data["passes"][0]["simulated"] is True


def test_calibrations_list_says_whether_a_calibration_was_simulated(tmp_path):
    path = tmp_path / "c.sqlite"
    _old_file(path, _older_json(), _older_json(simulated=True))
    CalibrationStore(path)  # migrated by a writer, as `smp calibrate` does
    out = run(["calibrations", "list", "--db", str(path)])
    assert "simulated" in out.splitlines()[0]
    body = out.splitlines()[1:]
    assert " yes " in body[0] and " unknown " in body[1]


# --- signed heads, receipts, keys (issue 12) ------------------------------------------------


def invoke(args: list[str]):
    return CliRunner().invoke(main, args)


def closed_log(tmp_path):
    from smpdevice.records.keys import InstallationKey

    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        receipt = log.close_session(sid, closed_at=T0, summary={})
    return db, receipt


def test_verify_ok_names_the_key_and_the_receipts(tmp_path):
    from smpdevice.records.keys import InstallationKey

    db, _ = closed_log(tmp_path)
    out = run(["sessions", "verify", "--db", str(db)])
    assert out.startswith("ok: 4 records, chain intact, signed by this installation's key")
    assert InstallationKey.load_or_create().fingerprint in out and "1 receipt holds" in out


def test_verify_checks_a_kept_receipt_as_text_or_file(tmp_path):
    db, receipt = closed_log(tmp_path)
    sheet = tmp_path / "sheet.txt"
    sheet.write_text("Record receipt (keep it):\n  " + receipt.text().replace(" ", "\n  ", 2))
    for given in (receipt.text(), str(sheet)):
        assert "2 receipts hold" in run(["sessions", "verify", "--db", str(db),
                                         "--receipt", given])
    forged = receipt.text()[:-5] + "AAAAA"
    result = invoke(["sessions", "verify", "--db", str(db), "--receipt", forged])
    assert result.exit_code == 1 and "--receipt 1" in result.output
    result = invoke(["sessions", "verify", "--db", str(db), "--receipt", "nothing"])
    assert result.exit_code == 2 and "no receipt found" in result.output
    assert "Traceback" not in result.output


def test_verify_fails_naming_the_record_after_an_attack(tmp_path):
    import sqlite3

    db, _ = closed_log(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE chain_head")
    conn.close()
    result = invoke(["sessions", "verify", "--db", str(db)])
    assert result.exit_code == 1
    assert result.output.startswith("broken link: record 4: the chain head is missing")


def test_verify_without_the_anchors_file(tmp_path):
    db, _ = closed_log(tmp_path)
    db.with_name("passlog.anchors.jsonl").unlink()
    result = invoke(["sessions", "verify", "--db", str(db)])
    assert result.exit_code == 1 and "anchors file" in result.output
    assert "0 receipts hold" in run(["sessions", "verify", "--db", str(db), "--no-anchors"])


def test_keys_show_prints_the_fingerprint_in_every_session_header(tmp_path):
    db, receipt = closed_log(tmp_path)
    data = json.loads(run(["keys", "show", "--json"]))
    assert data["fingerprint"] == receipt.key_fingerprint
    assert len(bytes.fromhex(data["public_key"])) == 32
    shown = json.loads(run(["sessions", "show", receipt.session_id, "--db", str(db), "--json"]))
    assert shown["key_fingerprint"] == data["fingerprint"]
    assert data["fingerprint"] in run(["keys", "show"])


def test_the_aftercare_sheet_carries_the_receipt_that_verify_accepts(tmp_path, monkeypatch):
    from smpdevice.records.signing import Receipt

    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")  # the same session, without its 5 s of pen time
    out = run(["demo", "--quick"])
    assert "Record receipt (keep it" in out
    receipt = Receipt.parse(out[out.index("Record receipt"):])
    sheet = tmp_path / "sheet.txt"
    sheet.write_text(out)
    verified = run(["sessions", "verify", "--receipt", str(sheet)])
    assert verified.startswith("ok: ") and "2 receipts hold" in verified
    assert receipt.session_id in run(["sessions", "list"])


# --- exports, filters, schema, listings as JSON (issue 12 items 4-6) -------------------------


def test_export_options_filters_and_schema(tmp_path):
    db, receipt = closed_log(tmp_path)
    with PassLog(db) as log:
        other = open_session(log, "C-OTHER")
        log.end_pass(begin(log, other), outcome="completed", stats=stats(), ended_at=T0)
    base = ["sessions", "export", "--format", "jsonl", "--db", str(db)]
    rows = [json.loads(line) for line in run(base).splitlines()]
    assert len(rows) == 2 and not {r["client_ref"] for r in rows} & {"C-0042", "C-OTHER"}
    named = [json.loads(line) for line in run([*base, "--identified"]).splitlines()]
    assert [r["client_ref"] for r in named] == ["C-0042", "C-OTHER"]
    assert [r["pass_number"] for r in named] == [1, 1]
    only = run([*base, "--identified", "--client", "C-OTHER"]).splitlines()
    assert [json.loads(line)["session_id"] for line in only] == [other]
    assert len(run([*base, "--session", receipt.session_id[:8]]).splitlines()) == 1
    assert run([*base, "--until", "2000-01-01"]) == ""
    bad = invoke([*base, "--since", "2025-03-10", "--until", "2025-03-01"])
    assert bad.exit_code == 2 and "--until" in bad.output and "Traceback" not in bad.output
    schema = json.loads(run(["sessions", "schema"]))
    assert set(schema["properties"]) == set(named[0]) and schema["required"] == list(named[0])
    assert schema["properties"]["pass_number"]["minimum"] == 1


def test_sessions_list_json_and_filters(tmp_path):
    db, receipt = closed_log(tmp_path)
    data = json.loads(run(["sessions", "list", "--db", str(db), "--json"]))
    assert [s["session_id"] for s in data] == [receipt.session_id]
    assert data[0]["simulated"] is False and "passes" not in data[0]
    assert json.loads(run(["sessions", "list", "--db", str(db), "--json",
                           "--client", "nobody"])) == []


def test_sessions_show_labels_both_speeds_numbers_from_1_and_tables_the_summary(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        log.close_session(sid, closed_at=T0, summary={"passes": 1, "zones": {"top": 1}})
    out = run(["sessions", "show", sid, "--db", str(db)])
    assert "burst Hz" in out and "mean Hz" in out and "duty-weighted" in out
    row = next(line for line in out.splitlines() if " top " in line and "│" in line)
    assert row.split("│")[1].strip() == "1"
    assert "summary" in out and '{"passes"' not in out and "zones" in out


def test_calibrations_list_json_and_show(tmp_path):
    from smpdevice.calibration.store import CalibrationStore
    from tests.smpdevice.calibration.test_calibration_store import cal

    path = tmp_path / "c.sqlite"
    saved = cal()
    CalibrationStore(path).save(saved)
    data = json.loads(run(["calibrations", "list", "--db", str(path), "--json"]))
    assert [c["calibration_id"] for c in data] == [saved.calibration_id]
    assert data[0]["status"] == "expired" and "simulated" in data[0]
    shown = run(["calibrations", "show", saved.calibration_id, "--db", str(path)])
    assert saved.pen_serial in shown and "residuals mm" in shown
    assert json.loads(run(["calibrations", "show", saved.calibration_id, "--db", str(path),
                           "--json"]))["gain"] == saved.gain
    missing = invoke(["calibrations", "show", "nope", "--db", str(path)])
    assert missing.exit_code != 0 and "smp calibrations list" in missing.output
