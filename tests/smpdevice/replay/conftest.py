"""A recorded session on the virtual-time simulator, shared by the replay tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import load_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CLEAR = {q: False for q in ("open_sores", "eczema", "dermatitis", "psoriasis_flare",
                            "infection", "sunburn", "keloid_tendency")}


def short_profile(seconds: float = 0.3, passes: int | None = 3):
    profile = load_profile(EXAMPLES / "session1_base_density.yaml")
    plan = [p.model_copy(update={"duration_s": seconds, "impressions": None})
            for p in profile.plan][:passes]
    return profile.model_copy(update={"plan": plan})


@dataclass
class Recorded:
    passlog: PassLog
    session_id: str
    summary: dict
    path: Path


def record_session(pen, passlog: PassLog, profile=None) -> Recorded:
    session = TreatmentSession.open(pen, passlog, profile or short_profile(), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    summary, _ = session.close()
    path = Path(passlog.path).parent / "recordings" / summary["recording"]["file"]
    return Recorded(passlog, session.session_id, summary, path)


@pytest.fixture
def passlog(tmp_path):
    with PassLog.open(tmp_path / "passlog.sqlite") as log:
        yield log


# ------------------------------------------------ a session with another actor between passes

@dataclass
class Acted:
    """A session recorded with another actor between its passes (`record_acted`)."""

    path: Path  # the pass log
    session_id: str
    recording: Path  # its first part's file
    judged: str = ""  # the session's judged pen state once play() returned
    outcome: str = ""  # the outcome its suspend() recorded
    passes: tuple[str, ...] = ()  # each pass's outcome, in order


def record_acted(tmp_path: Path, act: Callable[[Any, Any], None] | None, *,
                 after_pass: int = 1, passes: int = 3, seconds: float = 0.3,
                 settle_s: float = 0.0, seed: int = 3,
                 before: Callable[[Any, Any, Any, PassLog], None] | None = None,
                 finish: Callable[[Any, Any, Any, PassLog], None] | None = None,
                 play: Callable[[Any, Any, Any], None] | None = None) -> Acted:
    """A `passes`-pass session on the virtual-time simulator (`seed`, its true calibration),
    played with `play()`: `act(sim, pen)` runs in another thread (joined) once pass
    `after_pass`'s end is logged, as another actor would (a technician, the service, a pulled
    cable); `before(sim, pen, session, log)` right after the opening; once play() returned,
    `settle_s` of virtual time, `finish(sim, pen, session, log)`, and the session suspended.
    `play(sim, pen, session)`: played so instead of `session.play()` (an integrator's own
    `run_pass` calls)."""
    from smpdevice.control import PenController
    from tests.smpdevice.conftest import true_calibration
    from tests.smpdevice.virtual_time import virtual_sim

    path = tmp_path / "passlog.sqlite"
    with (virtual_sim(seed=seed) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(path) as log):
        session = TreatmentSession.open(pen, log, short_profile(seconds, passes=passes),
                                        technician="ana", screening=parse_screening(CLEAR))
        assert session.recording is not None
        if before is not None:
            before(sim, pen, session, log)
        original, ended = log.end_pass, [0]

        def hooked(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            ended[0] += 1
            if ended[0] == after_pass and act is not None:
                other = threading.Thread(target=act, args=(sim, pen))
                other.start()
                other.join(30)
            return result

        log.end_pass = hooked  # type: ignore[method-assign]
        if play is None:
            session.play()
        else:
            play(sim, pen, session)
        judged = session.judged_pen_state()
        if settle_s:
            sim.time.sleep(settle_s)
        if finish is not None:
            finish(sim, pen, session, log)
        outcome = session.suspend()["outcome"]
        outcomes = tuple(str(p.outcome) for p in log.passes(session.session_id))
    recording = next((tmp_path / "recordings").glob(f"{session.session_id}*.mcap"))
    return Acted(path, session.session_id, recording, judged, outcome, outcomes)


def replay_runs(acted: Acted, runs: int, into_sim: bool = False, **kwargs: Any) -> list[Any]:
    """`acted` replayed `runs` times, each from a fresh controller (`smp replay`, or with
    `into_sim` `smp replay --into-sim` given `kwargs`): a verdict that depended on the
    threads' timing would not be the same every time."""
    from smpdevice.replay.into_sim import replay_into_sim
    from smpdevice.replay.runner import replay_session

    with PassLog(acted.path, readonly=True) as log:
        return [replay_into_sim(log, acted.session_id, **kwargs) if into_sim
                else replay_session(log, acted.session_id) for _ in range(runs)]


def assert_matches(acted: Acted, runs: int, unwanted: str = "matched on replay") -> None:
    """`acted` replays as `match` `runs` times, no note holding `unwanted` (by default: each
    at its first attempt), and `smp replay` says so (exit 0)."""
    from click.testing import CliRunner

    from smpdevice.cli import main

    for report in replay_runs(acted, runs):
        assert report.match, (report.difference, report.notes)
        assert not [n for n in report.notes if unwanted in n], report.notes
    result = CliRunner().invoke(main, ["replay", acted.session_id, "--db", str(acted.path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("match: session"), result.output


# ------------------------------------------------ `smp` as a process, on a calibrated station

SMP = Path(sys.executable).with_name("smp")
ROOT = EXAMPLES.parent


def smp_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`smp ARGS` in a process of its own (as a technician runs it), in the repository."""
    return subprocess.run([str(SMP), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def calibrated_station(tmp_path_factory: Any, data: Path, monkeypatch: Any, pen: str) -> dict:
    """`data`: a station's data directory holding `smp calibrate --port PEN --auto`'s
    calibration (run once per test run, `built_once`: its result is the same every time on a
    virtual-time pen of a given seed); the environment a `smp` process runs in there."""
    from tests.smpdevice.replay.test_into_sim_parts import built_once, copy_built

    def calibrate(into: Path) -> str:
        into.mkdir(parents=True)
        env = {**os.environ, "SMP_DATA_DIR": str(into), "TMPDIR": str(into)}
        env.pop("SMP_SIM_CLOCK", None)
        done = smp_process(env, "calibrate", "--port", pen, "--auto")
        assert done.returncode == 0, done.stdout[-800:] + done.stderr[-800:]
        return "calibrated"

    name = "calibrated-" + "".join(c if c.isalnum() else "-" for c in pen)
    built, _ = built_once(tmp_path_factory, name, calibrate)
    copy_built(built, data, monkeypatch)  # (and its key, in SMP_KEY_DIR)
    env = {**os.environ, "SMP_DATA_DIR": str(data), "TMPDIR": str(data)}
    env.pop("SMP_SIM_CLOCK", None)
    return env


def replay_last(env: dict[str, str]) -> Any:
    """`smp replay last` in the station `env` names, in this process (the import of a fresh
    `smp` process was nine tenths of its cost)."""
    from click.testing import CliRunner

    from smpdevice.cli import main

    return CliRunner().invoke(main, ["replay", "last"],
                              env={"SMP_DATA_DIR": env["SMP_DATA_DIR"]})
