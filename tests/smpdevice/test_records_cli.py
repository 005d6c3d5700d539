"""The records' presentation in the CLI: `smp sessions ...` and `smp calibrations ...`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from smpdevice.calibration_store import CalibrationStore
from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.test_calibration_store import _old_file, _older_json
from tests.smpdevice.test_passlog import T0, begin, make_v1_file, open_session, stats


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
