"""R1 (LOW): a service whose calibrations.sqlite is not an SQLite database refuses session.run
(right), but with the command line's advice ("give the path of a calibration database"), which
a service client cannot follow (--db/--calibrations are refused with --service):
install_newest wraps only CalibrationStoreError, the store raises NotADatabaseError.
Real service on loopback, real simulator."""
from __future__ import annotations

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import connect, data_dir, run, service, sim  # noqa: F401
from tests.smpdevice.service.test_rev20_cal_install import RUN


def test_a_corrupt_store_refuses_the_session_in_the_services_words(service, data_dir):  # noqa: F811
    (data_dir / "calibrations.sqlite").write_bytes(b"garbage" * 1000)

    async def go() -> str | None:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=2000)
        try:
            await op.call("session.run", **RUN)
            return None
        except ServiceError as exc:
            return str(exc)
        finally:
            await op.release()
            await op.close()

    refused = run(go())
    assert refused is not None, "a session opened on a store nobody can read"
    assert "calibration store cannot be read" in refused, refused
