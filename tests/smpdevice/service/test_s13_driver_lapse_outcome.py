"""A session whose driving client's lease runs out (a hung client; nobody asked a stop) ends
as the controller stopping it, `incomplete`, never `interrupted`, which reads "stopped by the
technician" on the sheet, the summary and the pass log's audit. Real service, sockets and
SQLite; the pen on virtual time, held mid-pass while the lease clock jumps past the lease.
The pen's own lease is long here (5 s), so that the service's stop, not the pen's lease
lapsing first (LEASE_EXPIRED: a `fault`, the other fail-safe), ends the pass."""

from __future__ import annotations

from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import WAIT_S, InNeedleRun, connect, run, wait_until

from .test_review11_reclaim_mid_session import CLEAR, PROFILE, LaggingClock


def test_a_session_whose_driver_lapsed_is_incomplete_not_stopped_by_the_technician(vsim,
                                                                                   data_dir):
    sim, clock = vsim, LaggingClock()
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=5000, calibration=true_calibration(sim),
                             lease_clock=clock)
    with ServiceHandle(options) as handle:
        pen = handle.server.service.pen
        moment = InNeedleRun(sim, 0, hold=True)

        async def main() -> dict:
            viewer = await connect(handle, Role.VIEWER)
            op = await connect(handle, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                          quick_pass_s=1.2)
            await moment.reached("pass 1 under way")
            op.stop_heartbeats()  # the client hangs: its lease runs out
            # A beat already sent is still read (stop_heartbeats() cancels only the wait for
            # its answer): it would renew the lease after the jump. The service reads this
            # connection's pings and heartbeats in order, so once the ping is answered none
            # is left (a quiet CI run saw the session play on to `completed`).
            await op.call("rpc.ping")
            stops = pen.stops_asked
            clock.jump(5.0)
            clock.caught_up.set()
            # The pen's time held until the dead-man has asked its stop (virtual time: the
            # rest of the pass takes no wall time; the watchdog looks every 20 ms of wall).
            await wait_until(lambda: pen.stops_asked > stops, what="the dead-man's stop")
            moment.release()
            result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
            await op.close()
            await viewer.close()
            return result

        result = run(main())
    assert result["outcome"] == "incomplete", result
    assert result["left_open"] is False, result
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (record,) = log.sessions()
        assert record.summary is not None and record.summary["outcome"] == "incomplete"
