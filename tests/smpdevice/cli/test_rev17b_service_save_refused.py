"""Review 17 (b17b, fixed): a guided `smp calibrate --service` run whose `calibration.save` the
service refused ended with the service's error (exit 2), no report. README: a failed
calibration exits 1; docs/technicians.md: "1 after its report". Now a refusal of the save by
the service (its checks, its store) is a failed run: the report, "not saved: ...", nothing
saved or installed, the pen idle. Here the service's own store is locked by another program
at the last verify reading (after `calibration.begin` checked it). The workflow, `RemotePen`
and `ServiceStore` against a real in-process service and simulated pen."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.cli.calibrate_remote import RemotePen, ServiceStore
from smpdevice.records import readonly
from smpdevice.service.client import SyncServiceClient
from tests.smpdevice.service.conftest import data_dir, service, sim  # noqa: F401 (fixtures)


def test_a_save_the_service_refuses_is_a_failed_run_with_its_report(service, sim,  # noqa: F811
                                                                      data_dir,  # noqa: F811
                                                                      monkeypatch):
    # The lock is held from the last verify reading to the end: the in-process service's save
    # is refused however short its wait for it (readonly.BUSY_WAIT_S, 5 s in the product).
    monkeypatch.setattr(readonly, "BUSY_WAIT_S", 0.2)
    path = data_dir / CALIBRATIONS_NAME
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    before = service.pen.calibration

    class LockingGauge(SimulatorGauge):
        def read_mm(self, request: GaugeRequest) -> float:
            if request.label.startswith("Verify at 1.5") and not locker.in_transaction:
                locker.execute("BEGIN IMMEDIATE")  # another program, after the begin's check
            return super().read_mm(request)

    try:
        with SyncServiceClient.connect(service.url, role="technician", name="ana",
                                       data_dir=data_dir) as svc:
            pen = RemotePen(svc, svc.call("pen.identity"))
            svc.drive(lease_ms=2000)
            report = run_calibration(cast(Any, pen), LockingGauge(sim), technician="ana",
                                     settings=CalibrationSettings(spin_duration_s=0.3),
                                     store=cast(Any, ServiceStore(svc, service.url)))
            state = svc.call("pen.state")["state"]
            svc.release()
    finally:
        if locker.in_transaction:
            locker.rollback()
        locker.close()
    text = format_report(report)
    assert not report.passed and not report.saved and report.calibration is None, text
    assert "Depth points" in text and "not saved: the service refused calibration.save" in text
    assert "another program" in text, text
    assert state == "idle" and service.pen.calibration is before  # nothing installed
    assert CalibrationStore(path, readonly=True).latest(sim.serial) is None
