"""Review 11, F9 through the service: a pen that stops answering while the service sets up the
next pass (its ARM unanswered after every retry) ends the session as a lost pen: its result has
no error, outcome `link_lost`, and it is left open to be resumed (`session.resume`), as the
service's `smp run` counterpart does. Before the fix the `LinkTimeout` escaped `play()`: the
result carried it as an error and the session was closed `incomplete`. The service's own code
(smpdevice/service/work.py) is unchanged: it plays through `TreatmentSession.play()` and judges
with `left_resumable`. Real service, sockets and SQLite; the pen on virtual time."""

from __future__ import annotations

from firmware_protocol.codes import MsgType
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role

from .conftest import WAIT_S, InNeedleRun, connect, run
from .virtual_service import CLEAR, PROFILE, held_service, virtual_sim  # noqa: F401 (fixtures)


def test_an_unanswered_arm_between_passes_leaves_the_session_open_as_link_lost(service, sim):
    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        # during pass 1 the pen stops hearing ARM (its reports still flow)
        deaf = InNeedleRun(sim, 0, lambda: sim.link.drop_inbound(int(MsgType.ARM)))
        await op.drive(lease_ms=1000)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                      quick_pass_s=1.2, leave_open=True)
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        assert deaf.fired.is_set()
        await op.close()
        await viewer.close()
        return result

    result = run(main())
    assert result["error"] is None, result["error"]
    assert result["outcome"] == "link_lost" and result["left_open"] is True
    path = service.server.service.passlog_path
    with PassLog.open(path, readonly=True) as log:
        record = log.session(result["session_id"])
        assert record.closed_at is None
        assert [p.outcome for p in log.passes(record.session_id)] == ["completed"]
