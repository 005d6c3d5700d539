"""`smp run --resume SESSION` from the command line (in-process CliRunner), on a named
in-process simulator that outlives each command, as a pen outlives each `smp` call."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner

from simulators import PenSimulator
from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_run import (
    SCREENING,
    calibrate_default_pen,
    data_dir,  # noqa: F401 - a fixture
    short_profile,
)

# Named pens on the wall clock, jammed by a thread that watches for RUNNING, and services
# holding 1 s leases: beside pass 1's four workers on a loaded machine a starved pen let its
# lease lapse (the fail-safe working) and a resume ended faulted, exit 4 (review 12). They run
# in the realtime pass, which has the cores it needs.
pytestmark = pytest.mark.realtime


def jam_when_running(sim) -> threading.Thread:
    def act() -> None:
        deadline = time.monotonic() + 60
        while sim.firmware.state.name != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.005)
        sim.inject("jam")
    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


def interrupted_session(data_dir, tmp_path, sim) -> str:  # noqa: F811
    """`smp run` jammed mid-session: exit 4, the session left open. Returns its id."""
    thread = jam_when_running(sim)
    result = smp("run", str(short_profile(tmp_path)), "-t", "ana", "--screening",
                 str(SCREENING), "--port", sim.url)
    thread.join(timeout=60)
    assert result.exit_code == 4, result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.closed_at is None
        return session.session_id


def final_outcomes(log, sid) -> dict[int, str]:
    last: dict[int, str] = {}
    for p in log.passes(sid):
        last[p.index] = p.outcome
    return last


def test_fault_clear_resume_plays_only_what_is_left_and_verifies(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="resume-cli") as sim:
        sid = interrupted_session(data_dir, tmp_path, sim)
        with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
            before = final_outcomes(log, sid)
        not_done = [i for i in range(4) if before.get(i) != "completed"]
        # The cause is still there: refused before anything is recorded, saying what to do.
        refused = smp("run", "--resume", sid, "-t", "ana", "--port", sim.url)
        assert refused.exit_code == 2 and "JAM" in refused.output
        assert "smp clear" in refused.output
        with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
            assert log.resumptions(sid) == []
        sim.clear("jam")
        cleared = smp("clear", "--port", sim.url, "--yes")
        assert cleared.exit_code == 0, cleared.output
        result = smp("run", "--resume", sid[:8], "-t", "bo", "--port", sim.url)
    out = result.output
    assert result.exit_code == 0, out
    assert f"Resuming session {sid}" in out and f"{len(not_done)} of 4 planned passes left" in out
    assert "resumed once" in out and "Keep the treated area dry" in out
    assert "The screening" not in out, "not asked again within 30 min"
    _assert_resumed_to_completion(data_dir, sid, len(before), not_done)
    again = smp("run", "--resume", sid, "-t", "ana", "--port", "pensim://")
    assert again.exit_code == 2
    assert f"session {sid} is closed" in again.output and "cannot be reopened" in again.output
    verify = smp("sessions", "verify")
    assert verify.exit_code == 0, verify.output
    show = smp("sessions", "show", sid)
    assert show.exit_code == 0 and "resumptions" in show.output


def test_screening_is_asked_again_when_older_than_the_setting(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="resume-rescreen") as sim:
        sid = interrupted_session(data_dir, tmp_path, sim)
        sim.clear("jam")
        cleared = smp("clear", "--port", sim.url, "--yes")
        assert cleared.exit_code == 0, cleared.output
        # Not at a terminal and no --screening: refused before connecting, naming the fix.
        refused = smp("run", "--resume", sid, "-t", "ana", "--port", sim.url,
                      "--rescreen-after-min", "0")
        assert refused.exit_code == 1 and "--screening FILE" in refused.output  # unanswered
        result = smp("run", "--resume", sid, "-t", "ana", "--port", sim.url,
                     "--rescreen-after-min", "0", "--screening", str(SCREENING))
    assert result.exit_code == 0, result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (resumption,) = log.resumptions(sid)
        assert resumption["screening"] and not any(resumption["screening"].values())
    bad = smp("run", "--resume", sid, "-t", "ana", "--port", "pensim://",
              "--rescreen-after-min", "nan")
    assert bad.exit_code == 2 and "rescreen_after_min = 'nan'" in bad.output


def test_close_as_it_stands_prints_the_incomplete_sheet(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="resume-close") as sim:
        sid = interrupted_session(data_dir, tmp_path, sim)
    other = smp("run", "--resume", sid, "-t", "ana", "--port", "pensim://?seed=5")
    assert other.exit_code == 2 and f"session {sid} was recorded on pen SMP-" in other.output
    with PassLog.open(data_dir / "passlog.sqlite"):  # another run holds the log (its lock)
        busy = smp("run", "--resume", sid, "-t", "ana", "--port", "pensim://")
    assert busy.exit_code == 2 and f"session {sid} cannot be resumed now" in busy.output
    result = smp("run", "--resume", sid, "--close", "--port", "pensim://")
    assert result.exit_code == 4, result.output  # the session ended on its fault
    assert f"Session {sid} is closed as it stands" in result.output
    assert "SESSION INCOMPLETE" in result.output and "Record receipt" in result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert log.session(sid).summary["outcome"] == "fault"
        assert log.verify() is None


def test_the_rescreen_setting_does_not_disturb_a_fresh_run(data_dir, tmp_path,  # noqa: F811
                                                          monkeypatch):
    calibrate_default_pen(data_dir)
    monkeypatch.setenv("SMP_RESCREEN_AFTER_MIN", "10")
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")  # pensim:// on virtual time: a fresh run
    result = smp("run", str(short_profile(tmp_path)), "-t", "ana", "--screening",
                 str(SCREENING), "--port", "pensim://")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    (["run", "-t", "ana", "--port", "pensim://"], "or --resume SESSION"),
    (["run", "--close", "--port", "pensim://"], "--close goes with --resume SESSION"),
    (["run", "--resume", "Snope", "-t", "ana", "--port", "pensim://"], "no session 'Snope'"),
    (["run", "--resume", "S1", "-t", "ana", "--service", "ws://127.0.0.1:1/rpc", "--db",
      "x.sqlite"], "--db x.sqlite cannot be used with --service"),
    (["run", "--resume", "S1", "-t", "ana", "--service", "ws://127.0.0.1:1/rpc",
      "--rescreen-after-min", "-1"], "rescreen_after_min = '-1' is not allowed"),
])
def test_resume_usage_errors_are_one_clear_line(data_dir, args, message):  # noqa: F811
    result = smp(*args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------- through `smp serve` (15.5)


@pytest.fixture
def served(data_dir):  # noqa: F811
    """A real service (in process, real sockets, real SQLite) owning a named simulated pen."""
    from smpdevice.service.runner import ServiceHandle, ServiceOptions
    from tests.smpdevice.conftest import true_calibration

    with PenSimulator(seed=3, name="resume-served") as sim, ServiceHandle(ServiceOptions(
            port=sim.url, listen="127.0.0.1:0", data_dir=data_dir, lease_ms=1000,
            unix_socket=False, calibration=true_calibration(sim))) as handle:
        yield sim, handle


def served_interrupted(data_dir, tmp_path, sim, url) -> str:  # noqa: F811
    """`smp run --service` jammed mid-session: exit 4, left open, how to resume it through
    the service said. Returns its id."""
    thread = jam_when_running(sim)
    result = smp("run", str(short_profile(tmp_path, "0.6")), "-t", "ana", "--screening",
                 str(SCREENING), "--service", url)
    thread.join(timeout=60)
    assert result.exit_code == 4, result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.closed_at is None, "a faulted session through the service stays open"
        sid = session.session_id
    assert f"Session {sid} INCOMPLETE" in result.output and "left OPEN" in result.output
    assert f"smp run --resume {sid} --service {url}" in result.output
    assert f"smp clear --service {url}" in result.output
    return sid


def test_fault_clear_resume_through_the_service_plays_only_what_is_left(
        data_dir, tmp_path, served):  # noqa: F811
    sim, handle = served
    url = handle.url
    sid = served_interrupted(data_dir, tmp_path, sim, url)
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        before = final_outcomes(log, sid)
    not_done = [i for i in range(4) if before.get(i) != "completed"]
    refused = smp("run", "--resume", sid, "-t", "bo", "--service", url)  # still latched
    assert refused.exit_code == 2 and "must be idle" in refused.output
    sim.clear("jam")
    cleared = smp("clear", "--service", url, "--yes", "--reason", "jam removed")
    assert cleared.exit_code == 0, cleared.output
    result = smp("run", "--resume", sid[:8], "-t", "bo", "--service", url)
    out = result.output
    assert result.exit_code == 0, out
    # its first line is the plain service run's: the service's envelope holds it (README)
    assert out.splitlines()[0] == (
        f"checked against the envelope of the service at {url} (its `smp serve --envelope`, "
        "else its SMP_ENVELOPE or station config, else the built-in zones), narrowed to pen "
        f"{sim.serial}'s limits"), out[:400]
    assert f"Resuming session {sid}" in out and f"{len(not_done)} of 4 planned passes left" in out
    assert "through the service at" in out
    assert "resumed once" in out and "Keep the treated area dry" in out
    _assert_resumed_to_completion(data_dir, sid, len(before), not_done)
    again = smp("run", "--resume", sid, "-t", "ana", "--service", url)
    assert again.exit_code == 2 and "cannot be reopened" in again.output
    assert "Traceback" not in again.output
    # Both parts (the run, the resume through the service) were recorded and replay as run.
    replayed = smp("replay", sid)
    assert replayed.exit_code == 0, replayed.output
    assert "match" in replayed.output and "2 recorded parts" in replayed.output


def test_through_the_service_the_screening_is_due_and_close_ends_it(
        data_dir, tmp_path, served):  # noqa: F811
    sim, handle = served
    url = handle.url
    sid = served_interrupted(data_dir, tmp_path, sim, url)
    sim.clear("jam")
    assert smp("clear", "--service", url, "--yes", "--reason", "jam removed").exit_code == 0
    # Due (0 min) and no terminal, no --screening: refused, nothing recorded, the fix named.
    due = smp("run", "--resume", sid, "-t", "ana", "--service", url, "--rescreen-after-min",
              "0")
    assert due.exit_code == 1 and "--screening FILE" in due.output  # unanswered: README
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert log.resumptions(sid) == [] and log.session(sid).closed_at is None
    closed = smp("run", "--resume", sid, "--close", "--service", url)
    assert closed.exit_code == 4, closed.output  # it ended on its fault
    assert closed.output.startswith(f"checked against the envelope of the service at {url} "
                                    "(its `smp serve --envelope`"), closed.output[:400]
    assert f"Session {sid} is closed as it stands" in closed.output
    assert "SESSION INCOMPLETE" in closed.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert log.session(sid).summary["outcome"] == "fault" and log.verify() is None


def _assert_resumed_to_completion(directory, sid: str, passes_before: int,
                                  not_done: list[int]) -> None:
    """The log holds the session closed as completed, with only the passes not completed
    played again, one resumption by "bo", and a chain that verifies."""
    with PassLog(directory / "passlog.sqlite", readonly=True) as log:
        session = log.session(sid)
        assert session.closed_at is not None and session.summary["outcome"] == "completed"
        assert final_outcomes(log, sid) == dict.fromkeys(range(4), "completed")
        resumed = [p.index for p in log.passes(sid)][passes_before:]
        assert resumed == not_done, "only the passes not completed are played"
        (resumption,) = log.resumptions(sid)
        assert resumption["technician"] == "bo"
        assert log.verify() is None
