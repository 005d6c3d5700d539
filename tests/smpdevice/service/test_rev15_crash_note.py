"""Review 15 (service, V3): a session whose service host died mid-pass, resumed through a new
service on a pen that restarted since, must say that part of the crashed pass may be played
again, as the local resume does. README ("Resuming an interrupted session"): "When the pen
restarted since (its uptime or counters went back) ... the pass counts its checkpoint only,
and the resume says that up to 0.5 s plus one lease of that pass (about N dots) may be played
again"; "Through a running `smp serve`, give `--service URL` ...: the service resumes it with
the same checks". Neither `session.resume`'s answer nor anything the service sends the client
says it (`smp run --resume --service` prints nothing of it).

The crash: a real service plays a session on a simulated pen on virtual time; mid-pass, with
the pen's time held, the data directory's files are copied as a killed host leaves them. A new
service (a new simulated pen of the same serial: its counters start again) serves the copy."""

from __future__ import annotations

import asyncio
import json
import shutil

from rich.console import Console

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.cli.remote import say_resuming
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401 (fixtures)
    PEN_LEASE_MS,
    InNeedleRun,
    connect,
    data_dir,
    run,
    vsim,
)
from tests.smpdevice.service.virtual_service import CLEAR, PROFILE, held_service, virtual_sim  # noqa: F401


def test_a_resume_after_a_host_crash_on_a_restarted_pen_says_what_may_repeat(
        service, sim, tmp_path):
    crashed = tmp_path / "crashed"
    source = service.server.service.passlog_path.parent
    moment = InNeedleRun(sim, 1, hold=True, impressions=8)  # pass 2, past its first checkpoint

    async def play_and_crash() -> str:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        sid = (await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                             leave_open=True))["session_id"]
        await moment.reached()
        shutil.copytree(source, crashed,  # the files as a host killed now leaves them
                        ignore=shutil.ignore_patterns("service.sock", "serve.lock"))
        moment.release()
        await op.call("session.stop")
        await op.close()
        return sid

    sid = run(play_and_crash())
    for stale in ("serve.lock", "service.sock"):
        (crashed / stale).unlink(missing_ok=True)

    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as pen2:  # restarted
        options = ServiceOptions(port=pen2.url, listen="127.0.0.1:0", data_dir=crashed,
                                 lease_ms=PEN_LEASE_MS, calibration=true_calibration(pen2),
                                 lease_clock=lambda: 0.0)
        with ServiceHandle(options) as second:
            async def resume() -> tuple[dict, dict]:
                viewer = await connect(second, Role.VIEWER)
                op = await connect(second, Role.OPERATOR)
                await op.drive(lease_ms=1000)
                answer = await op.call("session.resume", session_id=sid, technician="bo")
                result = await viewer.next_notification("session.result", timeout_s=30)
                await op.close()
                await viewer.close()
                return answer, result

            answer, result = run(resume())
            with PassLog(crashed / "passlog.sqlite", readonly=True) as log:
                outcomes = [p.outcome for p in log.passes(sid)]
    assert "controller_crashed" in outcomes, outcomes  # the crash as the local resume sees it
    said = json.dumps(answer) + json.dumps(result)
    assert "played again" in said, (
        f"the client is never told the crashed pass may repeat: answer {answer}")
    assert any("played again" in n for n in answer["notes"]), answer
    from smpdevice.service.jsonschema_lite import validate
    from smpdevice.service.schema import METHODS

    validate(METHODS["session.resume"].result, answer)  # the answer rpc.describe promises
    # `smp run --resume --service` prints them as the local resume does
    console = Console(record=True, width=200)
    say_resuming(console, "ws://x", "SMP-1", True, answer)
    printed = console.export_text()
    assert "Resuming session" in printed and "  Note: " in printed, printed
    assert "played again" in printed, printed


_ = asyncio
