"""`smp replay --into-sim` of a resumed session (issue 15, part 3): each part's host frames
into a simulator carried over from the part before (as the pen stayed on), brought to the
part's start from what its recording says (its clock, an idle pen: CLEAR_FAULTS for the clear
outside the recording; a fresh simulator when the pen's clock began again; the handshake of a
new connection). Real sessions on the virtual-time simulator, recorded and resumed."""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.records.frames import RecordingError, read_recording, recordings_dir
from smpdevice.replay.into_sim import _recorded_uptime_ms, replay_into_sim
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.run_once import run_dir, run_lock
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import CLEAR, short_profile
from tests.smpdevice.virtual_time import TimeDriver, after

pytestmark = pytest.mark.virtual_time

JAM = "jam@0.5-0.6"  # pen time: in part 1's second pass (0.4 s passes); its cause then goes


@dataclass
class Resumed:
    session_id: str
    parts: list  # the parts' recordings
    passlog: PassLog | None = None


def built_once(tmp_path_factory, name: str, build: Callable[[Path], str]) -> tuple[Path, str]:
    """A data directory that `build(data)` makes and records a session in (returning its id),
    made once per test run, by whichever test (in whichever pytest-xdist worker) asks first:
    the others wait on the lock and get the same. Returns (its data directory, the id).

    Recording a session took most of these tests' CPU, once per test. The directory is never
    written to again: a test copies it (`copy_built`) and works on its copy. Its pass log is
    signed by its own installation key (BUILT/keys), which a test reading it uses too."""
    with run_lock(run_dir(tmp_path_factory), f"built-{name}") as root:
        built = root / f"built-{name}"
        if not (built / "id").is_file():  # not built yet, or a build that failed
            work = root / f"built-{name}.partial"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("SMP_KEY_DIR", str(work / "keys"))
                sid = build(work / "data")
            (work / "id").write_text(sid)
            shutil.rmtree(built, ignore_errors=True)
            work.rename(built)
    return built / "data", (built / "id").read_text()


def copy_built(built: Path, into: Path, monkeypatch) -> Path:
    """A copy of the data directory `built` in `into`, its key the one that signed it."""
    shutil.copytree(built, into, dirs_exist_ok=True)
    monkeypatch.setenv("SMP_KEY_DIR", str(built.parent / "keys"))
    return into


@contextlib.contextmanager
def virtual_pen(spec: str | None = None):
    """A booted simulator with fault spec `spec` on a virtual clock, and a controller."""
    clock = VirtualClock()
    with PenSimulator(seed=7, clock=clock, link_faults=spec) as sim, TimeDriver(clock) as drv:
        sim.advance(0.06)
        sim.time = drv
        pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                    clock=clock)
        try:
            yield sim, pen
        finally:
            pen.close()


def _parts(passlog, sid: str) -> list:
    folder = recordings_dir(passlog.path)
    return [read_recording(folder / name) for name in
            (f"{sid}.mcap", f"{sid}part2.mcap") if (folder / name).is_file()]


def _first_part(sim, pen, passlog, interrupt) -> TreatmentSession:
    first = TreatmentSession.open(pen, passlog, short_profile(0.4, passes=4), technician="ana",
                                  screening=parse_screening(CLEAR))
    interrupt(sim, pen)
    first.play()
    first.suspend()
    return first


def jammed_then_resumed(passlog) -> Resumed:
    """Part 1 jams (fault spec JAM, its cause gone 0.1 s later); the technician clears the
    pen on the same connection; part 2 plays the passes left."""
    with virtual_pen(JAM) as (sim, pen):
        first = _first_part(sim, pen, passlog, lambda sim, pen: None)
        assert pen.state.value == "fault"
        sim.time.wait_until(lambda: sim.firmware.uptime_ms > 700, timeout_s=5.0)
        pen.clear_faults()
        second = resume_session(pen, passlog, first.session_id, technician="bo")
        second.play()
        second.close()
    return Resumed(first.session_id, _parts(passlog, first.session_id))


def _record_jammed(data: Path) -> str:
    data.mkdir()
    with PassLog.open(data / "passlog.sqlite") as log:
        return jammed_then_resumed(log).session_id


@pytest.fixture
def jammed(tmp_path_factory, tmp_path, monkeypatch) -> Iterator[Resumed]:
    """jammed_then_resumed's session, recorded once per run; this test's own copy of it,
    its pass log open in `.passlog`."""
    built, sid = built_once(tmp_path_factory, "jammed", _record_jammed)
    data = copy_built(built, tmp_path / "jammed", monkeypatch)
    with PassLog.open(data / "passlog.sqlite") as log:
        yield Resumed(sid, _parts(log, sid), log)


def test_each_part_of_a_resumed_session_matches_in_the_simulator(jammed):
    passlog = jammed.passlog
    assert len(jammed.parts) == 2
    same = [rec.meta["connection"] for rec in jammed.parts]
    assert same[0] == same[1]  # resumed on the same connection: no second handshake
    report = replay_into_sim(passlog, jammed.session_id, faults=JAM)
    assert report.match, (report.difference, [r.started for r in report.part_results])
    first, second = report.part_results
    assert first.match and second.match and second.host_frames > 0
    assert any("CLEAR_FAULTS sent (the pen left FAULT, faults JAM" in s for s in second.started)
    assert not any("handshake" in s for s in second.started)


def test_a_cause_that_stays_makes_the_resumed_part_differ_at_its_start(jammed):
    """The simulator's jam never goes (`jam@0.5`): the clear cannot make it idle, as the
    recorded pen was when part 2 began. Part 1 still matches."""
    passlog = jammed.passlog
    report = replay_into_sim(passlog, jammed.session_id, faults="jam@0.5")
    assert not report.match
    assert report.part_results[0].match
    diff = report.difference
    assert diff.what == "pen at the part's start" and diff.part.startswith("part 2 (")
    assert "FAULT" in diff.got and "JAM" in diff.got and "CONDITION_ACTIVE" in diff.got


def test_a_change_seen_only_in_the_resumed_part_names_that_part(jammed):
    """A simulator that also jams in part 2's first pass (pen time from part 2's recording):
    part 1 matches, part 2 names the event the recorded pen never raised."""
    passlog = jammed.passlog
    start_s = _recorded_uptime_ms(jammed.parts[1]) / 1000.0
    report = replay_into_sim(passlog, jammed.session_id,
                             faults=f"{JAM},jam@{start_s + 0.2:.3f}")
    assert not report.match
    assert [r.match for r in report.part_results] == [True, False]
    diff = report.difference
    assert diff.part == f"part 2 ({jammed.session_id}part2.mcap)"
    # the simulator jammed: it refuses a command the pen took (DISARM in FAULT), or raises
    # the event the pen never did
    assert (diff.what == "session reply" and "Nack" in diff.got) or (
        diff.what == "pen event" and "JAM" in diff.got), diff


def test_cli_prints_each_part_and_exits_0_or_names_the_part(jammed):
    db = str(jammed.passlog.path)
    ok = CliRunner().invoke(main, ["replay", jammed.session_id, "--into-sim", "--faults", JAM,
                                   "--db", db])
    assert ok.exit_code == 0, ok.output
    lines = ok.output.splitlines()
    assert lines[0].startswith(f"part 1 ({jammed.session_id}.mcap): pen side matches, ")
    assert lines[1].startswith(f"part 2 ({jammed.session_id}part2.mcap): pen side matches, ")
    assert "CLEAR_FAULTS sent" in lines[1]
    assert lines[2].startswith(f"match: session {jammed.session_id}, 2 recorded parts")
    bad = CliRunner().invoke(main, ["replay", jammed.session_id, "--into-sim", "--faults",
                                    "jam@0.5", "--db", db])
    assert bad.exit_code == 1, bad.output
    assert "part 2 (" in bad.output and "pen side differs" in bad.output
    assert f"first difference: part 2 ({jammed.session_id}part2.mcap): pen at the part's " \
           "start" in bad.output


def test_an_e_stop_in_part_1_replays_and_is_cleared_between_parts(passlog):
    """The E-stop is the host's command: the simulator latches it too; the reset between
    the parts is outside the recording (CLEAR_FAULTS), and part 2 matches."""
    def estop(sim, pen):
        after(sim.clock, 0.5, pen.estop, in_thread=True)

    with virtual_pen() as (sim, pen):
        first = _first_part(sim, pen, passlog, estop)
        assert pen.state.value == "estop"
        pen.clear_faults()
        second = resume_session(pen, passlog, first.session_id, technician="bo")
        second.play()
        second.close()
    report = replay_into_sim(passlog, first.session_id)
    assert report.match, report.difference
    assert any("CLEAR_FAULTS sent (the pen left ESTOP" in s
               for s in report.part_results[1].started)


def test_a_pen_restarted_between_parts_is_a_fresh_simulator(passlog):
    """Part 2 on another connection to a pen switched on again (its clock began anew, as
    each `smp run` on `pensim://?faults=...` gets): a fresh simulator, its handshake replayed,
    and its fault spec from its own start again."""
    with virtual_pen(JAM) as (sim, pen):
        first = _first_part(sim, pen, passlog, lambda sim, pen: None)
    in_part_1 = passlog.passes(first.session_id)
    # Each controller stamps its records on its own clock (a virtual one runs ahead of the
    # wall): the second's resumption may be stamped before the first's last pass began.
    behind = datetime.fromisoformat(in_part_1[0].started_at)
    with virtual_pen(JAM) as (sim, pen):
        second = resume_session(pen, passlog, first.session_id, technician="bo", now=behind,
                                screening=parse_screening(CLEAR))
        second.play()  # it jams again at 0.5 s of its pen time: interrupted again, left open
        second.suspend()
    parts = _parts(passlog, first.session_id)
    assert parts[0].meta["connection"] != parts[1].meta["connection"]
    # so the parts' passes are counted, not told apart by their times
    assert [rec.meta["passes_before"] for rec in parts] == [0, len(in_part_1)]
    plain = replay_session(passlog, first.session_id)
    assert plain.match, (plain.difference, plain.notes)
    report = replay_into_sim(passlog, first.session_id, faults=JAM)
    assert report.match, (report.difference, [r.started for r in report.part_results])
    started = " ".join(report.part_results[1].started)
    assert "fresh simulator" in started and "clock began again" in started
    assert "handshake replayed" in started


def test_a_hand_injected_fault_is_not_in_the_recording_and_shows_in_part_1(passlog):
    """A jam injected by hand (no fault spec): the simulator told the same commands never
    jams, so part 1 differs and the later part is not replayed (the simulator is no longer
    the recorded pen)."""
    with virtual_pen() as (sim, pen):
        first = _first_part(sim, pen, passlog,
                            lambda sim, pen: after(sim.clock, 0.5, lambda: sim.inject("jam")))
        sim.clear("jam")
        pen.clear_faults()
        second = resume_session(pen, passlog, first.session_id, technician="bo")
        second.play()
        second.close()
    result = CliRunner().invoke(main, ["replay", first.session_id, "--into-sim", "--db",
                                       str(passlog.path)])
    assert result.exit_code == 1, result.output
    assert f"part 1 ({first.session_id}.mcap): pen side differs" in result.output
    assert "1 later part(s) not replayed" in result.output
    assert "expected Event FAULT_LATCHED" in result.output


def test_the_resumed_parts_preamble_is_its_connections_handshake_only(jammed):
    """The pen's reports while it sat faulted between the parts (untapped bytes the port kept)
    are not part 2's preamble: a replay connecting on it would start on a faulted pen and play
    nothing (`expected SetSetpoints; got nothing more from the controller`)."""
    passlog = jammed.passlog
    first, second = ([(e.channel, e.data) for e in rec.entries if e.channel.startswith(
        "/preamble/")] for rec in jammed.parts)
    assert second == first
    report = replay_session(passlog, jammed.session_id)
    assert report.match, (report.difference, report.notes)


def test_recordings_from_before_connection_ids_replay_both_ways(jammed_open):
    """Parts recorded before `/meta` had `connection`, and when part 2's preamble went on
    with what crossed the port between the parts (here: the pen's reports while it sat
    faulted): both replays take part 2's handshake to be part 1's (the same connection)."""
    from smpdevice.records.frames import FrameWriter

    sid, passlog = jammed_open.session_id, jammed_open.passlog
    old_parts = _parts(passlog, sid)
    faulted = [e for e in old_parts[0].entries if e.channel == "/pen"][-5:]  # after the jam
    for rec in old_parts:
        meta = {k: v for k, v in rec.meta.items() if k != "connection"}
        entries = list(rec.entries)
        if meta["part"] == 2:
            last = max(i for i, e in enumerate(entries) if e.channel.startswith("/preamble/"))
            entries[last + 1:last + 1] = [dataclasses.replace(e, channel="/preamble/pen")
                                          for e in faulted]
        rec.path.unlink()
        writer = FrameWriter(rec.path, meta, start_s=0.0)
        for entry in entries:
            writer.add(entry.channel, entry.t_s, entry.data)
        writer.seal()
    rewritten = _parts(passlog, sid)
    assert "connection" not in rewritten[1].meta
    assert len([e for e in rewritten[1].entries if e.channel == "/preamble/pen"]) == len(
        [e for e in old_parts[1].entries if e.channel == "/preamble/pen"]) + len(faulted)
    plain = replay_session(passlog, sid)
    assert plain.match, (plain.difference, plain.notes)
    into = replay_into_sim(passlog, sid, faults=JAM)
    assert into.match, (into.difference, [r.started for r in into.part_results])
    assert not any("handshake" in s for s in into.part_results[1].started)


def test_idle_time_past_the_cap_is_skipped_and_counted(monkeypatch):
    """A pen idle for days between two parts is not simulated tick by tick past MAX_IDLE_S;
    the skipped time is returned (and said in the part's line)."""
    from smpdevice.replay import sim_pen

    monkeypatch.setattr(sim_pen, "MAX_IDLE_S", 0.5)
    pen = sim_pen.SimulatedPen(0, {}, None)
    try:
        before = pen.uptime_ms
        assert pen.idle_until_uptime(before + 2000) == pytest.approx(1.5, abs=0.002)
        assert pen.uptime_ms - before == pytest.approx(500, abs=2)
        assert pen.idle_until_uptime(pen.uptime_ms - 100) == 0.0  # never backwards
    finally:
        pen.close()


@pytest.mark.parametrize("value", [-1, True, 10_000, "2"])
def test_a_part_that_miscounts_the_passes_before_it_is_refused(jammed_open, value):
    """`passes_before` splits the parts' passes: a value that cannot be (edited, in a session
    left open whose parts no hash protects) is refused, never used to slice."""
    from smpdevice.records.frames import FrameWriter
    from smpdevice.replay.parts import load

    sid, passlog = jammed_open.session_id, jammed_open.passlog
    rec = _parts(passlog, sid)[1]
    rec.path.unlink()
    writer = FrameWriter(rec.path, {**rec.meta, "passes_before": value}, start_s=0.0)
    for entry in rec.entries:
        writer.add(entry.channel, entry.t_s, entry.data)
    writer.seal()
    with pytest.raises(RecordingError, match="passes had begun before it"):
        load(passlog, sid)


def _jammed_cleared_and_resumed_open(passlog) -> str:
    """A session jammed in part 1, cleared and resumed on the same connection, then left open
    (its parts are not linked by hash, so a test may rewrite them). Its id."""
    with virtual_pen(JAM) as (sim, pen):
        first = _first_part(sim, pen, passlog, lambda sim, pen: None)
        sim.time.wait_until(lambda: sim.firmware.uptime_ms > 700, timeout_s=5.0)
        pen.clear_faults()
        second = resume_session(pen, passlog, first.session_id, technician="bo")
        second.play()
        second.suspend()
    return first.session_id


def _record_jammed_open(data: Path) -> str:
    data.mkdir()
    with PassLog.open(data / "passlog.sqlite") as log:
        return _jammed_cleared_and_resumed_open(log)


@pytest.fixture
def jammed_open(tmp_path_factory, tmp_path, monkeypatch) -> Iterator[Resumed]:
    """_jammed_cleared_and_resumed_open's session, recorded once per run; this test's own
    copy of it (which it may rewrite), its pass log open in `.passlog`."""
    built, sid = built_once(tmp_path_factory, "jammed-open", _record_jammed_open)
    data = copy_built(built, tmp_path / "jammed-open", monkeypatch)
    with PassLog.open(data / "passlog.sqlite") as log:
        yield Resumed(sid, _parts(log, sid), log)
