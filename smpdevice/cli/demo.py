"""`smp demo`: the whole system, end to end, on the built-in simulator."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from importlib import resources
from typing import TYPE_CHECKING

import click

from smpdevice.cli.console import cli_console
from smpdevice.cli.interrupt import CTRL_C, Interrupted
from smpdevice.errors import SmpError

if TYPE_CHECKING:
    from smpdevice.control import PenController
    from smpdevice.sessions.profiles import TreatmentProfile

# Shipped inside the package (copies of examples/ files, kept equal by a test), so the demo
# runs from an installed wheel as well as from a checkout.
DATA = resources.files("smpdevice") / "data"
PROFILE = DATA / "session1_base_density.yaml"
SCREENING = DATA / "screening_clear.yaml"
QUICK_PASS_S = 0.4


def seed_number(text: str) -> int:
    """A simulated pen's seed, as `pensim://?seed=` takes it (simulators.protocol_pensim): ASCII
    digits, -SEED_MAX..SEED_MAX; int() would take 2**70, "1_0" and full-width digits.
    ValueError otherwise. The one check of `smp demo`, `smp sim` and examples/ --seed."""
    from simulators.pen_model import SEED_MAX

    if not re.fullmatch(r"-?[0-9]{1,20}", text) or not -SEED_MAX <= int(text) <= SEED_MAX:
        # text (abc, 1_0, " 5") is "no whole number", as pensim://?seed=abc says
        what = "is out of range" if re.fullmatch(r"-?[0-9]+", text) else "is no whole number"
        raise ValueError(f"{text[:40]!r} {what}: a whole number {-SEED_MAX}.."
                         f"{SEED_MAX} in ASCII digits (as pensim://?seed= takes), e.g. --seed 3")
    return int(text)


class SeedNumber(click.ParamType):
    """`--seed`: seed_number() as a click option type (a usage error, exit 2, one line)."""

    name = "integer"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        try:
            return seed_number(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def quick_profile(profile: TreatmentProfile, pen: PenController) -> TreatmentProfile:
    """--quick: every pass planned longer than QUICK_PASS_S shortened to it, never one made
    longer; checked again against `pen` (the service's quick_pass_s rule, one function)."""
    from smpdevice.service.quick_pass import shortened

    return shortened(profile, QUICK_PASS_S, pen, source=f"{PROFILE.name} (with --quick)")


@click.command()
@click.option("--quick", is_flag=True,
              help=f"Shorten every pass planned longer than {QUICK_PASS_S} s to it, and the "
                   "speed check (tests, CI).")
@click.option("--seed", type=SeedNumber(), default=0, show_default=True,
              help="Which simulated pen (its serial number and hidden calibration error).")
@click.option("--web", is_flag=True,
              help="Serve the simulated pen with the web console instead (smp serve).")
@click.option("--listen", default="127.0.0.1:8765", show_default=True, metavar="HOST:PORT",
              help="With --web: the console's address (loopback; port 0 picks a free one).")
@click.option("--no-browser", is_flag=True, help="With --web: do not open a browser.")
def demo(quick: bool, seed: int, web: bool, listen: str, no_browser: bool) -> None:
    """Run the main job on the built-in simulator: no hardware needed.

    Starts a simulated pen, connects, calibrates it automatically against the simulator's
    depth gauge, opens a session-1 (base density) session from the bundled example profile
    with a screening that passes, plays its passes with live figures, closes the session, and
    prints the summary, the aftercare sheet and where the pass log is.

    Everything is written under the data directory ($SMP_DATA_DIR, default
    ~/.local/share/smpdevice). With SMP_SIM_CLOCK=virtual the simulated pen runs on virtual
    time: the same session, played as fast as the computer can (docs/simulator.md).

    \b
    Example:
      smp demo
      SMP_DATA_DIR=/tmp/smp smp demo --quick
    """
    from simulators import PenSimulator
    from simulators.clock import sim_clock
    from smpdevice.calibration.gauges import SimulatorGauge
    from smpdevice.calibration.report import CalibrationSettings, format_report
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.calibration.workflow import run_calibration
    from smpdevice.cli import exit_interrupted
    from smpdevice.cli.device import pen_identity
    from smpdevice.cli.run import RunReport, needle_state, print_outcome, run_session
    from smpdevice.cli.run_report import late_stop_note
    from smpdevice.cli.screening_prompt import read_screening
    from smpdevice.control import PenController
    from smpdevice.outcomes import SessionOutcome
    from smpdevice.passlog import PassLog
    from smpdevice.paths import data_dir
    from smpdevice.sessions.profiles import load_profile

    if web:  # the console on a calibrated simulated pen (issue 14, G)
        from smpdevice.service import demo_web

        return demo_web.run(seed, listen=listen, open_browser=not no_browser)
    if not (PROFILE.is_file() and SCREENING.is_file()):
        raise SmpError(f"the demo's files are missing from {DATA}; reinstall smpdevice")
    try:  # SMP_SIM_CLOCK=virtual: the pen on virtual time, driven by this host (simulator.md)
        clock = sim_clock()
    except ValueError as exc:
        raise SmpError(str(exc)) from None
    console = cli_console()
    started = time.monotonic()
    with contextlib.ExitStack() as files:
        profile = load_profile(files.enter_context(resources.as_file(PROFILE)))
        screening = read_screening(str(files.enter_context(resources.as_file(SCREENING))))
    store = CalibrationStore()
    if console.is_terminal:
        console.rule("[bold]smpdevice demo[/bold]: a simulated pen, no hardware")
    else:  # a rule fitted to 80 columns would be cut short in a file
        console.print("smpdevice demo: a simulated pen, no hardware", markup=False)
    console.print(f"Data directory: {data_dir()}")
    with PenSimulator(seed=seed, clock=clock) as sim, PassLog.open() as passlog:
        console.print(f"1. Simulated pen {sim.serial} started ({sim.url}).")
        with PenController.connect(sim.url) as pen:
            ident = pen_identity(pen)
            console.print(f"2. Connected: firmware {ident.firmware_version}, protocol "
                          f"v{ident.protocol_version}, state {pen.state.value}.")
            console.print("3. Calibrating automatically against the simulator's depth gauge...")
            settings = CalibrationSettings(spin_duration_s=0.3 if quick else 0.6)
            report = run_calibration(pen, SimulatorGauge(sim.url), technician="demo",
                                     settings=settings, store=store)
            if not report.passed or report.fit is None or pen.calibration is None:
                console.print(format_report(report))
                raise SmpError("the demo calibration failed; see the report above")
            fit, cal = report.fit, pen.calibration
            console.print(f"   {len(fit.points)} gauge points: depth in skin = "
                          f"{fit.gain:.4f} x actuator {fit.offset_mm:+.4f} mm, worst residual "
                          f"{fit.max_abs_residual_mm:.4f} mm; verified; saved as "
                          f"{cal.calibration_id}, valid until {cal.expires_at:%Y-%m-%d}.")
            if quick:  # against the calibrated pen's envelope, as the session checks it
                profile = quick_profile(profile, pen)
            console.print(f"4. Session 1 from {PROFILE.name}, screening: all answers no.")
            # As in `smp run`: Ctrl-C (SIGTERM, SIGHUP alike) stops the needle at the next
            # safe point, the session records what ran, and the line says both (README).
            ran = RunReport(sim.url, planned_passes=len(profile.plan),
                           pen_serial=ident.serial, simulated=True)
            try:
                with CTRL_C.deferred():
                    session = run_session(pen, passlog, profile, technician="demo",
                                          screening=screening, console=console,
                                          should_stop=CTRL_C.is_requested, report=ran)
                    ran.needle = needle_state(pen)
                    ran.outcome = session.outcome
                    CTRL_C.settle()  # recorded: a stop signal now changes nothing
            except (KeyboardInterrupt, Interrupted):
                ran.needle = needle_state(pen)
                exit_interrupted(ran.interrupted_line())
            session_id, summary, sheet = session.session_id, session.summary, session.sheet
        console.print()
        from smpdevice.sessions.aftercare import planned_done

        completed = planned_done(summary)
        print_outcome(console, session_id, session.outcome, port=sim.url, completed=completed,
                      planned=len(profile.plan))
        console.print(f"5. Summary: {summary['passes']} passes, {summary['strokes']} strokes, "
                      f"{summary['impressions']} impressions, {summary['needle_s']} s of needle.")
        console.print()
        console.print(sheet)
        console.print(f"Pass log: {passlog.path}")
        console.print(f"See it with:  smp sessions show {session_id}")
        console.print("Check its hash chain:  smp sessions verify")
    if CTRL_C.requested and session.outcome is SessionOutcome.interrupted:
        exit_interrupted(ran.interrupted_line())
    late_stop_note(session_id, session.outcome)
    console.print(f"Demo finished in {time.monotonic() - started:.1f} s.")
    if not session.outcome.complete:
        sys.exit(session.outcome.exit_code)
