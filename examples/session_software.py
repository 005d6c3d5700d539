#!/usr/bin/env python3
"""Session software driving one SMP session through the smpdevice Python API, end to end.

This is the shape of a program that integrates the pen: connect, make sure the pen is
calibrated, load and check a treatment profile, screen the client, open a session, play its
passes while showing live figures (with an E-stop the user can hit at any time), close the
session and print the summary and the aftercare sheet. Everything it writes goes to the data
directory ($SMP_DATA_DIR, default ~/.local/share/smpdevice): the pass log and calibrations.

Run it:
    python examples/session_software.py --simulator           # a built-in simulated pen
    python examples/session_software.py --simulator --quick   # passes of 0.3 s at most (CI)
    python examples/session_software.py --port /dev/ttyACM0 --technician ana

Like `smp run`, it never picks the simulator by itself (--port, SMP_PORT or --simulator), and
it exits with the same codes (smpdevice.outcomes.ExitCode): 0 only when every planned pass
completed; 4 fault, 5 E-stop, 6 pen lost, 7 ended early, 130 Ctrl-C. On a real pen the
calibration must already exist (`smp calibrate --port ...`); on the simulator this script
calibrates it automatically against the simulator's depth gauge.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path

from firmware_protocol.codes import EventCode
from firmware_protocol.messages import Event
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from smpdevice.control.pen import PenTelemetry
from smpdevice.errors import SmpError
from smpdevice.logs import configure
from smpdevice.outcomes import ExitCode, next_steps
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import check_profile, load_profile
from smpdevice.sessions.screening import load_screening_file
from smpdevice.sessions.session import PassProgress, TreatmentSession

EXAMPLES = Path(__file__).resolve().parent
PROFILE = EXAMPLES / "session1_base_density.yaml"
SCREENING = EXAMPLES / "screening_clear.yaml"
QUICK_PASS_S = 0.3


class LiveFigures:
    """What a UI would show: the latest telemetry, kept by a listener (reader thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latest: PenTelemetry | None = None
        self.peak_current_a = 0.0

    def on_telemetry(self, t: PenTelemetry) -> None:
        # Called ~100 times a second in the link's reader thread: keep it short, never block.
        with self._lock:
            self.latest = t
            self.peak_current_a = max(self.peak_current_a, t.current_a)


def on_state(old: State, new: State, reason: str) -> None:
    """Every controller state change (e.g. light the UI's "needle running" lamp)."""
    print(f"  [state] {old.value} -> {new.value} ({reason})")


def on_event(event: Event) -> None:
    """What the pen reports on its own: faults, E-stop, reboots."""
    if event.event != EventCode.STATE_CHANGED:
        print(f"  [pen event] {EventCode(event.event).name}")


def ensure_calibration(pen: PenController, store: CalibrationStore, technician: str,
                       simulator) -> None:
    """Install the pen's newest valid calibration; on the simulator, make one if there is none."""
    calibration = store.latest_valid(pen.identity.serial)
    if calibration is not None:
        pen.set_calibration(calibration)  # refuses a calibration of another pen
        print(f"Calibration {calibration.calibration_id} from the store "
              f"(valid until {calibration.expires_at:%Y-%m-%d}).")
        return
    if simulator is None:
        raise SmpError(f"pen {pen.identity.serial} has no valid calibration. Calibrate it "
                       f"first: smp calibrate --port {pen.port_url}")
    from smpdevice.calibration.gauges import SimulatorGauge

    print("No stored calibration: calibrating against the simulator's depth gauge...")
    report = run_calibration(pen, SimulatorGauge(simulator.url), technician=technician,
                             settings=CalibrationSettings(spin_duration_s=0.3), store=store)
    if pen.calibration is None:  # only a run that passes every check installs one
        raise SmpError("calibration failed:\n" + format_report(report))
    print(f"Calibration {pen.calibration.calibration_id} saved: offset "
          f"{pen.calibration.offset_mm:+.3f} mm, gain {pen.calibration.gain:.4f}.")


def seed_option(text: str) -> int:
    """--seed: a seed `pensim://?seed=` takes (the check `smp demo --seed` and `smp sim` use)."""
    from smpdevice.cli.demo import seed_number

    try:
        return seed_number(text)
    except ValueError as exc:  # argparse: `error: argument --seed: ...`, exit 2
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", default=os.environ.get("SMP_PORT"),
                        help="the pen (default: $SMP_PORT)")
    parser.add_argument("--simulator", action="store_true", help="use a built-in simulated pen")
    parser.add_argument("--profile", default=str(PROFILE), help="treatment profile (YAML/JSON)")
    parser.add_argument("--screening", default=str(SCREENING), help="screening answers (YAML)")
    parser.add_argument("--technician", default="example", help="who treats (recorded)")
    parser.add_argument("--quick", action="store_true",
                        help=f"shorten every pass planned longer than {QUICK_PASS_S} s to it")
    parser.add_argument("--seed", type=seed_option, default=0, help="which simulated pen")
    parser.add_argument("--log-level", default=None, help="debug, info, warning (default)")
    args = parser.parse_args(argv)
    configure(args.log_level)  # structlog: warnings and errors only, on stderr
    if not args.port and not args.simulator:
        raise SmpError("no pen chosen: pass --port (e.g. /dev/ttyACM0), set SMP_PORT, or pass "
                       "--simulator for a built-in simulated pen")

    # 1. Check the inputs before touching any pen: a bad profile or a positive screening
    #    answer stops here (ProfileError / ScreeningRefused list every problem). Both files
    #    go through smpdevice's strict loader (LoadError): an answer given twice is refused,
    #    never silently the last one, and YAML 1.1's `no` is text, not false.
    profile = load_profile(args.profile)
    screening = load_screening_file(args.screening)  # as `smp run --screening` reads it
    screening.require_clear()

    with contextlib.ExitStack() as stack:
        simulator = None
        port = args.port
        if args.simulator:
            from simulators import PenSimulator
            from simulators.clock import sim_clock

            # real time; SMP_SIM_CLOCK=virtual: virtual time, as fast as it computes
            clock = sim_clock()  # (docs/simulator.md)
            simulator = stack.enter_context(PenSimulator(seed=args.seed, clock=clock))
            port = simulator.url

        # 2. Connect. The context manager stops the needle, disarms and closes on the way out,
        #    also after an exception.
        pen = stack.enter_context(PenController.connect(port))
        kind = "SIMULATED pen" if pen.simulated else "pen"
        print(f"Connected to {kind} {pen.identity.serial} (firmware "
              f"{pen.identity.firmware_version}) on {port}: {pen.state.value}.")
        if pen.state is not State.IDLE:
            # A latched fault or E-stop is never cleared behind the technician's back.
            raise SmpError(f"the pen is {pen.state.value} ({pen.last_fault}); remove the cause, "
                           f"then clear it: smp clear --port {port}")
        figures = LiveFigures()
        pen.add_telemetry_listener(figures.on_telemetry)
        pen.add_state_listener(on_state)
        pen.add_event_listener(on_event)

        # 3. Calibration, then the profile against this pen's own envelope (its hard limits
        #    through the calibration narrow every zone).
        ensure_calibration(pen, CalibrationStore(), args.technician, simulator)
        if args.quick:  # only ever shorter (smp demo --quick's rule), checked again: ProfileError
            from smpdevice.service.quick_pass import shortened

            profile = shortened(profile, QUICK_PASS_S, pen, source=f"{args.profile} (--quick)")
        issues = check_profile(profile, pen.zones)
        if issues:
            raise SmpError("the profile does not fit this pen: "
                           + "; ".join(str(i) for i in issues))

        # 4. The session. Opening it records the screening, the pen, its calibration and the
        #    profile's hash in the pass log; each pass is recorded before the needle starts.
        passlog = stack.enter_context(PassLog.open())
        session = TreatmentSession.open(pen, passlog, profile, technician=args.technician,
                                        screening=screening)
        print(f"Session {session.session_id}: {profile.session_kind.value} for client "
              f"{profile.client_ref}, {len(profile.plan)} passes.")

        shown: dict[int, float] = {}

        def on_progress(p: PassProgress) -> None:
            # Called by play() about every 20 ms in this thread; a UI would redraw here.
            t = p.telemetry
            if t is None or t.depth_mm is None or p.elapsed_s < shown.get(p.index, -1.0) + 0.25:
                return
            shown[p.index] = p.elapsed_s
            print(f"    pass {p.index + 1}/{p.total} {p.zone:<9} {p.fraction:4.0%}  "
                      f"depth {t.depth_mm:.3f} mm  speed {t.speed_hz:5.1f} Hz  "
                      f"strokes {p.strokes}", flush=True)

        # A UI's E-stop button calls pen.estop() from its own thread; it bypasses every queue.
        # Ctrl-C (like `smp run`): run_pass stops the needle, records the pass and re-raises.
        interrupted = False
        try:
            session.play(on_progress=on_progress)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            # Always: records the session's outcome (completed, fault, estop, link_lost,
            # interrupted, ...) with the summary, and writes the matching aftercare sheet.
            summary, sheet = session.close()

        # 5. The outcome of every pass and of the session, the summary and the aftercare sheet.
        for r in session.results:
            print(f"  pass {r.index + 1} {r.zone:<9} {r.outcome.value:<10} "
                  f"strokes {r.stats.strokes:>5}  impressions {r.stats.impressions:>4}"
                  + (f"  ({r.detail})" if r.detail else ""))
        print(f"Summary: {summary['passes']} passes, {summary['strokes']} strokes, "
              f"{summary['impressions']} impressions, {summary['needle_s']} s of needle, "
              f"peak current {figures.peak_current_a:.2f} A.")
        outcome, planned = session.outcome, len(profile.plan)
        if not outcome.complete:  # never "done" when a planned pass did not complete
            completed = summary["planned_done"]  # the plan's, not passes played past it
            print(f"Session {session.session_id} INCOMPLETE: {outcome.reason}; {completed} of "
                  f"{planned} planned passes completed.")
            for step in next_steps(outcome, port=port, session_id=session.session_id,
                                   remaining_passes=planned - completed):
                print(f"  Next: {step}")
        print()
        print(sheet)
        print(f"Pass log: {passlog.path} (smp sessions show {session.session_id})")
        if interrupted:
            t = pen.telemetry
            needle = ("the needle is stopped (the pen reports it)"
                      if t is not None and not t.needle_running else
                      "the needle's stop is not confirmed; the pen stops it within its lease")
            print(f"interrupted: {needle}; session {session.session_id} is recorded as "
                  f"{outcome.value}.", file=sys.stderr)
            return ExitCode.INTERRUPTED
        return outcome.exit_code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # outside play() (there, main() handles it)
        print("interrupted: no pass was running, and the pen was stopped and disarmed on the "
              "way out; what was recorded: smp sessions list", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    except SmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
