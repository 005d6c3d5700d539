"""The durable calibration store and the gauge clients (TCP, simulator, their errors)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from simulators import GaugeServer, PenSimulator
from smpdevice.calibration.gauges import GaugeError, GaugeRequest, SimulatorGauge, TcpGauge
from smpdevice.calibration.store import CalibrationStore, CalibrationStoreError, calibrations_path
from smpdevice.control.calibration import Calibration
from smpdevice.errors import SmpError
from smpdevice.ui.gauges import open_gauge
from tests.smpdevice.conftest import STATION_SPEED_CHECK

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
REQ = GaugeRequest(label="test", actuator_mm=1.0)


def cal(serial: str = "SMP-AAAA0001", created: datetime = T0, days: float = 30, **kw):
    """A calibration to save: its points and the station's speed check (`kw` may replace it)."""
    return Calibration.linear(
        pen_serial=serial, technician="ana", offset_mm=-0.3, gain=1.02, created_at=created,
        validity_days=days, points=[(0.5, 0.21), (1.5, 1.23), (2.5, 2.25)],
        residuals_mm=[0.001, -0.002, 0.001], **{**STATION_SPEED_CHECK, **kw},
    )


def test_round_trip_keeps_every_field(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    original = cal(speed_error_pct=-0.4)
    store.save(original)
    again = CalibrationStore(tmp_path / "c.sqlite").get(original.calibration_id)
    assert again == original
    assert again.points == [(0.5, 0.21), (1.5, 1.23), (2.5, 2.25)]


def test_default_path_is_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    assert calibrations_path() == tmp_path / "data" / "calibrations.sqlite"
    store = CalibrationStore()
    assert store.path.exists()


def test_durability_pragmas(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    store.save(cal())
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    db.close()
    with store._connect() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_latest_and_list_by_pen_newest_first(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    old, new = cal(created=T0), cal(created=T0 + timedelta(days=3))
    other = cal(serial="SMP-BBBB0002", created=T0 + timedelta(days=5))
    for c in (old, other, new):
        store.save(c)
    assert store.latest("SMP-AAAA0001") == new
    assert [c.calibration_id for c in store.list("SMP-AAAA0001")] == [
        new.calibration_id, old.calibration_id]
    assert store.list()[0].calibration_id == new.calibration_id  # saved last
    assert store.latest("SMP-NONE0000") is None


def test_newest_is_the_one_saved_last_whatever_date_it_carries(tmp_path):
    """review9b R08: a calibration saved while the PC's clock ran ahead (dated a day, or a
    year, in the future) must not shadow the ones saved after the clock was corrected."""
    store = CalibrationStore(tmp_path / "c.sqlite")
    now = datetime.now(UTC)
    for ahead in (timedelta(days=1), timedelta(days=300)):
        ahead_cal = cal(created=now + ahead)
        store.save(ahead_cal)
        assert store.latest("SMP-AAAA0001") == ahead_cal
        fresh = cal(created=now)
        store.save(fresh)
        assert store.latest("SMP-AAAA0001") == fresh
        assert store.latest_valid("SMP-AAAA0001") == fresh
        assert store.list("SMP-AAAA0001", limit=2) == [fresh, ahead_cal]
        assert CalibrationStore(store.path, readonly=True).latest("SMP-AAAA0001") == fresh


def test_an_older_file_keeps_its_save_order_and_new_saves_come_after(tmp_path):
    """A file from before `saved_seq`: its rows count in the order they were inserted (saved),
    read-only as well as once a writer added the column; a new save is newer than all."""
    path = tmp_path / "c.sqlite"
    _old_file(path, _older_json(calibration_id="c0"), _older_json(calibration_id="c1"))
    conn = sqlite3.connect(path)  # c2 saved last, dated before both (a clock corrected back)
    conn.execute("INSERT INTO calibrations VALUES ('c2', 'SMP-AAAA0001', 'ana', "
                 "'2025-12-01', '2099-01-01', 0, 1, ?)", (_older_json(calibration_id="c2"),))
    conn.commit()
    conn.close()
    ids = ["c2", "c1", "c0"]
    readonly = CalibrationStore(path, readonly=True)
    assert [c.calibration_id for c in readonly.list()] == ids
    assert readonly.latest("SMP-AAAA0001").calibration_id == "c2"
    store = CalibrationStore(path)  # adds saved_seq from the insertion order
    assert [c.calibration_id for c in store.list()] == ids
    newer = cal(created=datetime(2020, 1, 1, tzinfo=UTC))
    store.save(newer)
    assert store.latest("SMP-AAAA0001") == newer


def test_expiry(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    short = cal(created=T0, days=7)
    store.save(short)
    assert store.latest_valid("SMP-AAAA0001", now=T0 + timedelta(days=6)) == short
    assert store.latest_valid("SMP-AAAA0001", now=T0 + timedelta(days=7)) is None
    assert store.latest("SMP-AAAA0001") == short  # still found, so "expired" can be said
    default = cal(created=T0 + timedelta(days=1))  # default validity: 30 days
    store.save(default)
    assert store.latest_valid("SMP-AAAA0001", now=T0 + timedelta(days=30)) == default
    assert store.latest_valid("SMP-AAAA0001", now=T0 + timedelta(days=31)) is None


def test_write_errors_are_clear_smp_errors(tmp_path):
    with pytest.raises(CalibrationStoreError, match="does not exist") as exc:
        CalibrationStore(tmp_path / "missing" / "c.sqlite")
    assert isinstance(exc.value, SmpError)

    store = CalibrationStore(tmp_path / "c.sqlite")
    c = cal()
    store.save(c)
    with pytest.raises(CalibrationStoreError, match="nothing was saved"):
        store.save(c)  # same id twice: the database refuses, the user gets one line

    (tmp_path / "a-directory").mkdir()
    with pytest.raises(CalibrationStoreError, match="cannot open the calibration database"):
        CalibrationStore(tmp_path / "a-directory")

    if os.geteuid() != 0:  # root ignores file permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        CalibrationStore(ro / "c.sqlite")
        for f in ro.iterdir():
            f.chmod(0o444)
        ro.chmod(0o555)
        try:
            with pytest.raises(CalibrationStoreError):
                CalibrationStore(ro / "c.sqlite").save(cal())
        finally:
            ro.chmod(0o755)


def test_a_damaged_record_is_reported_not_crashed_on(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    c = cal()
    store.save(c)
    with store._connect() as db:
        db.execute("UPDATE calibrations SET record_json = '{\"gain\": -1}'")
    with pytest.raises(CalibrationStoreError, match="damaged"):
        store.latest(c.pen_serial)


# ----------------------------------------------------------------------------- gauges


def test_tcp_gauge_reads_the_simulator_gauge_server():
    with PenSimulator(seed=4) as sim:
        server = GaugeServer(sim.gauge)
        try:
            host, port = server.address
            gauge = open_gauge(f"tcp://{host}:{port}")
            assert isinstance(gauge, TcpGauge)
            assert gauge.read_mm(REQ) == sim.gauge.read_mm()  # 0.0: retracted, inside
            gauge.close()
        finally:
            server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tcp_gauge_says_what_to_do():
    with pytest.raises(GaugeError, match=r"cannot reach the gauge .* Is `smp sim`"):
        TcpGauge(f"tcp://127.0.0.1:{_free_port()}", timeout_s=0.5)
    with pytest.raises(GaugeError, match="expected tcp://HOST:PORT"):
        TcpGauge("tcp://nowhere")


def test_tcp_gauge_refuses_a_reply_that_is_not_a_reading():
    listener = socket.create_server(("127.0.0.1", 0))
    replies = [b"ERR unknown command\n", b"7.5\n"]

    def serve():
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as rfile:
            for reply in replies:
                rfile.readline()
                conn.sendall(reply)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    gauge = TcpGauge(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
    try:
        with pytest.raises(GaugeError, match="not a reading"):
            gauge.read_mm(REQ)
        with pytest.raises(GaugeError, match=r"outside 0\.\.3 mm"):
            gauge.read_mm(REQ)
    finally:
        gauge.close()
        listener.close()
        t.join(1)


def test_simulator_gauge_needs_a_running_simulator():
    with pytest.raises(GaugeError, match="no simulated pen is running"):
        SimulatorGauge("pensim://nobody-here")
    with PenSimulator(seed=1) as sim:
        gauge = open_gauge(None, port_url=sim.url)
        assert isinstance(gauge, SimulatorGauge)
        assert gauge.read_mm(REQ) == 0.0
    with pytest.raises(GaugeError, match="unknown gauge"):
        open_gauge("ftp://x")


# --- simulated (issue 11 item 8) ---------------------------------------------------------------

OLD_SCHEMA = """CREATE TABLE calibrations (
    calibration_id TEXT PRIMARY KEY, pen_serial TEXT NOT NULL, technician TEXT NOT NULL,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, offset_mm REAL NOT NULL,
    gain REAL NOT NULL, record_json TEXT NOT NULL)"""


def _older_json(**extra) -> str:
    """A calibration as saved before the `simulated` field (plus `extra` keys)."""
    data = json.loads(cal().model_dump_json())
    data.pop("simulated", None)
    return json.dumps({**data, **extra})


def _old_file(path, *calibrations_json: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(OLD_SCHEMA)
    for i, text in enumerate(calibrations_json):
        conn.execute("INSERT INTO calibrations VALUES (?, 'SMP-AAAA0001', 'ana', ?, "
                     "'2099-01-01', 0, 1, ?)", (f"c{i}", f"2026-01-0{i + 1}", text))
    conn.commit()
    conn.close()


def test_an_older_file_gains_the_simulated_flag_and_keeps_unknown_as_unknown(tmp_path):
    """A row saved before the flag existed reads as unknown (None), never a guessed False."""
    path = tmp_path / "c.sqlite"
    before, said_simulated = _older_json(), _older_json(simulated=True)
    _old_file(path, before, said_simulated)
    assert [e.simulated for e in CalibrationStore(path, readonly=True).entries()] == [None, None]
    store = CalibrationStore(path)  # a writer adds the column
    assert [e.simulated for e in store.entries()] == [True, None]  # newest first
    store.save(cal(created=T0 + timedelta(days=9)))
    assert store.entries()[0].simulated in (None, False)  # as the Calibration model says
    assert store.entry("c1").simulated is True and store.entry("nope") is None


@pytest.mark.skipif("simulated" not in Calibration.model_fields,
                    reason="Calibration.simulated is added by the controller work (helper D)")
@pytest.mark.parametrize("flag", [True, False])
def test_a_calibrations_simulated_field_is_stored(tmp_path, flag):
    store = CalibrationStore(tmp_path / "c.sqlite")
    original = cal().model_copy(update={"simulated": flag})
    store.save(original)
    (entry,) = CalibrationStore(tmp_path / "c.sqlite", readonly=True).entries()
    assert entry.simulated is flag and entry.calibration.simulated is flag


def test_a_pass_log_given_as_the_calibration_database_is_refused_untouched(tmp_path):
    """`smp calibrate --db passlog.sqlite` used to add the calibration tables to the pass log
    (review 7a); the reverse was already refused."""
    from smpdevice.passlog import PassLog

    path = tmp_path / "passlog.sqlite"
    PassLog(path).close()
    before = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    with pytest.raises(CalibrationStoreError, match="not a calibration database"):
        CalibrationStore(path)
    after = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert after == before and "calibrations" not in after
    CalibrationStore(tmp_path / "new.sqlite").save(cal())  # a new file still becomes one


def test_a_calibration_dated_in_the_future_is_refused_naming_the_clock():
    """review9b R08: one made while the clock ran ahead would stay valid 30 days past its
    wrong date; refused (drift of up to an hour between two PCs' clocks is allowed)."""
    now = datetime.now(UTC)
    ahead = cal(created=now + timedelta(days=1))
    with pytest.raises(SmpError, match=r"is dated .* after this computer's clock.*Check the "
                                       r"clock, then recalibrate: smp calibrate --port P"):
        ahead.check_for("SMP-AAAA0001", port="P")
    cal(created=now + timedelta(minutes=30)).check_for("SMP-AAAA0001")  # drift: allowed
    ahead.check_for("SMP-AAAA0001", now=now + timedelta(days=1))  # judged at its time: fine
