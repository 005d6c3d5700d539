"""B1 (review 11) with a session: docs/service.md, a session "stops before the next pass, and
stops the needle, as soon as its driving client is lost"; a lease run out is a loss ("every
loss of the pen (... a lease run out ...) stops and disarms"). B1 made a claim that lands
before the watchdog's look act on the lapse itself (stop, disarm). When the *same* client
re-claims (its lease ran out: a hiccup, a GC pause; then its console's Drive again), the lease
never reads "nobody": does its session still end, or does it play on under the new claim?

The lease clock is the test's: it jumps past the driver's expiry while the pen's time is held
mid-pass, and the watchdog's reading of it lags by one look (it is 20 ms late: a claim that
lands inside that window, as it does in most tries on wall time, review 11 B1)."""

from __future__ import annotations

import threading
from importlib import resources

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from smpdevice.sessions.screening import QUESTIONS
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (
    PEN_LEASE_MS,
    WAIT_S,
    InNeedleRun,
    connect,
    run,
    while_held,
)

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}


class LaggingClock:
    """The clients' lease clock; the watchdog thread reads it one jump late until `caught_up`."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.watchdog_s = 1000.0
        self.caught_up = threading.Event()

    def jump(self, seconds: float) -> None:
        self.now_s += seconds

    def __call__(self) -> float:
        if threading.current_thread().name == "smp-service-deadman" and \
                not self.caught_up.is_set():
            return self.watchdog_s
        return self.now_s


def test_a_lapse_mid_session_re_claimed_by_its_driver_leaves_it_open(vsim, data_dir):
    sim = vsim
    clock = LaggingClock()
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             lease_clock=clock)
    with ServiceHandle(options) as handle:
        service = handle.server.service
        moment = InNeedleRun(sim, 1, hold=True)

        async def main() -> tuple[dict, list]:
            viewer = await connect(handle, Role.VIEWER)
            op = await connect(handle, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                          quick_pass_s=1.2, leave_open=True)
            await moment.reached("pass 1 under way")
            op.stop_heartbeats()
            # A beat already sent is still read (stop_heartbeats() cancels only the wait for
            # its answer): it would renew the lease after the jump. The service reads this
            # connection's pings and heartbeats in order, so once the ping is answered none
            # is left (a quiet CI run saw the session play on to `completed`).
            await op.call("rpc.ping")
            clock.jump(5.0)  # its lease has run out
            epoch = service.lease.epoch
            await while_held(moment, op.call("pen.drive", lease_ms=1000),
                             lambda: service.lease.epoch != epoch, "the re-claim")
            clock.caught_up.set()
            passes = []
            while True:
                method, params = await viewer.next_event({"session.pass", "session.result"},
                                                         timeout_s=WAIT_S)
                if method == "session.result":
                    result = params
                    break
                passes.append((params["index"], params["outcome"]))
            await op.release()
            await op.close()
            await viewer.close()
            return result, passes

        result, passes = run(main())
    played_after = [p for p in passes if p[0] >= 2]
    assert not played_after, f"the session played on after its driver's lapse: {passes}"
    # docs/service.md: a session whose driving client went (its lease run out) and that no
    # session.stop ended is left open, to be resumed (leave_open, as `smp run` asks).
    assert result["left_open"] is True, (
        f"closed as {result['outcome']!r} (passes {passes}), not left open to be resumed")
