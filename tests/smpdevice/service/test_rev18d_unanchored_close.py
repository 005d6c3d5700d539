"""rev18d (review 18h, b18h).
the service's session whose close committed but whose receipt could not be appended
to the anchors file (PassLogError "is recorded and closed"; review 18e kept that close's result
for a retry). docs/service.md: `session.result` has "`left_open` saying whether the pass log
still has it open"; the service says `left_open: true`, outcome `log_error` and no aftercare
sheet for a session its pass log holds closed. Real service, simulator on virtual time, real
SQLite; the anchors path made a symbolic link as the session closes (the one hook), which the
log refuses to append through."""

from __future__ import annotations

from smpdevice.service.auth import Role
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.service.conftest import WAIT_S, connect, data_dir, run, vsim  # noqa: F401
from tests.smpdevice.service.virtual_service import (  # noqa: F401  (fixtures)
    CLEAR,
    PROFILE,
    held_service,
    virtual_sim,
)


def test_a_session_closed_in_the_log_is_never_told_left_open(service, tmp_path, monkeypatch):
    anchors = service.server.service.passlog_path.with_name("passlog.anchors.jsonl")
    real_close = TreatmentSession.close

    def close_unanchored(session, *args, **kwargs):  # the hook: the link made as it closes
        anchors.unlink(missing_ok=True)
        anchors.symlink_to(tmp_path / "elsewhere.jsonl")
        return real_close(session, *args, **kwargs)

    monkeypatch.setattr(TreatmentSession, "close", close_unanchored)

    async def main() -> tuple[dict, dict]:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        started = await op.call("session.run", profile=PROFILE, screening=CLEAR,
                                technician="t", quick_pass_s=0.2)
        while True:
            method, params = await op.next_event({"session.result"}, timeout_s=WAIT_S)
            if method == "session.result":
                break
        shown = await op.call("sessions.show", session_id=started["session_id"])
        await op.release()
        await op.close()
        return params, shown

    result, shown = run(main())
    assert shown["session"]["closed_at"] is not None, shown["session"]  # closed in the log
    assert result["left_open"] is False, result  # was: True, outcome log_error
    assert result["outcome"] == shown["session"]["summary"]["outcome"] == "completed", result
    assert result["aftercare"], result  # the sheet, as the log's close has it
    assert result["record_error"] is True and "receipt" in result["error"], result
