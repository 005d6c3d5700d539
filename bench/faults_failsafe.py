"""Fault campaign, fail-safe scenarios (issue 11): a lost E-stop, and input bombs.

- estop   an E-stop the link loses, through `PenController.estop()` to a real-time simulator
          whose link drops only ESTOP frames (host -> pen); the needle must stop within one
          lease every time, measured on the simulator's clock (firmware tick of the stop minus
          the moment `estop()` was called). Variants: only LEASE_RENEW gets through (so
          only the host's silence on the lease can stop the needle), every host frame dropped
          once the needle runs (telemetry still flows, so silence never tells), and ESTOP
          delayed beyond the lease.
- bombs   hostile files through the public loaders (`smpdevice.sessions.profiles.load_profile`,
          `smpdevice.envelope.load_envelope`), each in a fresh subprocess: time to refuse and the
          peak resident memory it cost (ru_maxrss after minus before the call).

Run through bench/faults.py (`bench/faults.py estop bombs`); tests/test_campaign.py runs them
with small counts.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from bench.campaign_core import Result, median, sim_calibration, wait_until
from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.messages import HOST_TO_PEN

ROOT = Path(__file__).resolve().parent.parent

# ============================================================================ 7. estop

VARIANTS = {
    "estop_dropped": "every ESTOP frame lost (host -> pen), all else passes",
    "only_renewals": "every host -> pen frame lost except LEASE_RENEW: only the lease can stop it",
    "all_dropped": "every host -> pen frame lost from the moment the needle runs",
    "estop_delayed": "ESTOP frames arrive 2 leases late",
}


def _watch_stop(fw) -> list[float]:
    """Firmware clock time (s) of the first tick or command that leaves RUNNING."""
    stop_at: list[float] = []

    def wrap(call):
        def wrapped(*args, **kwargs):
            was = fw.state is FirmwareState.RUNNING
            out = call(*args, **kwargs)
            if was and fw.state is not FirmwareState.RUNNING and not stop_at:
                stop_at.append(fw.time_s())
            return out
        return wrapped

    fw.step = wrap(fw.step)
    fw.receive_now = wrap(fw.receive_now)
    return stop_at


def _estop_run(variant: str, seed: int, lease_ms: int, wait_s: float, res: Result,
               label: str) -> dict | None:
    from simulators import PenSimulator
    from smpdevice.control import PenController, State

    lease_s = lease_ms / 1000
    with PenSimulator(seed=seed) as sim:
        fw = sim.firmware
        pen = PenController.connect(sim.url, calibration=sim_calibration(sim), lease_ms=lease_ms)
        try:
            try:
                pen.set_zone("crown")
                pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=100)
                pen.arm()
                pen.start_needle()
            except Exception as exc:  # not the E-stop under test: counted, reported, skipped
                return {"setup_error": f"{type(exc).__name__}: {exc}"}
            stop_at = _watch_stop(fw)
            latched: list[float] = []
            pen.add_state_listener(lambda old, new, why: new is State.ESTOP
                                   and latched.append(time.monotonic()))
            if variant == "estop_dropped":
                sim.link.drop_inbound(MsgType.ESTOP)
            elif variant == "only_renewals":
                sim.link.drop_inbound(*(t for t in HOST_TO_PEN if t != MsgType.LEASE_RENEW))
            elif variant == "all_dropped":
                sim.link.drop_inbound()
            else:
                sim.link.delay_inbound(2 * lease_s, MsgType.ESTOP)
            time.sleep(wait_s)  # the needle runs meanwhile
            starts = fw.executed[MsgType.NEEDLE_START]
            outcome: list[str] = []
            state_after: list[State] = []
            called: list[tuple[float, int]] = []  # (simulator clock = monotonic, renewals)
            returned: list[float] = []

            def call() -> None:
                # the moment of the call, in this thread: thread start-up is not the controller's
                called.append((sim.clock.now(), fw.executed[MsgType.LEASE_RENEW]))
                try:
                    pen.estop()
                    outcome.append("confirmed")
                except Exception as exc:  # the figure is which error, and that it is typed
                    outcome.append(type(exc).__name__)
                returned.append(time.monotonic())
                state_after.append(pen.state)

            caller = threading.Thread(target=call, daemon=True)
            caller.start()
            wait_until(lambda: bool(called), 5.0, 0.0002)
            called_s, renewals = called[0]
            local = wait_until(lambda: bool(latched), 2.0, 0.0005)
            local_s = (latched[0] if latched else time.monotonic()) - called_s
            stopped = wait_until(lambda: bool(stop_at), 4 * lease_s + 1.0)
            caller.join(timeout=15.0)
            returned_s = (returned[0] if returned else time.monotonic()) - called_s
            if caller.is_alive():
                res.fail(f"{label}: estop() had not returned after 15 s")
            if not stopped:
                res.fail(f"{label}: the needle was still running {4 * lease_ms + 1000} ms "
                         f"after estop()")
                return None
            stop_ms = (stop_at[0] - called_s) * 1e3
            if stop_ms > lease_ms + 2:  # the firmware counts whole 1 ms ticks
                res.fail(f"{label}: needle stopped {stop_ms:.0f} ms after estop() "
                         f"(lease {lease_ms} ms)")
            if not local:
                res.fail(f"{label}: the controller was not in estop 2 s after estop()")
            after = fw.executed[MsgType.LEASE_RENEW] - renewals
            time.sleep(lease_s)  # nothing may restart it
            if fw.state is FirmwareState.RUNNING or fw.executed[MsgType.NEEDLE_START] != starts:
                res.fail(f"{label}: the needle ran again after the stop")
            return {"stop_ms": stop_ms, "local_ms": local_s * 1e3, "call_ms": returned_s * 1e3,
                    "outcome": outcome[0] if outcome else "hung",
                    "state": state_after[0].value if state_after else "?",
                    "renewals_after": after, "pen_state": fw.state.name}
        finally:
            sim.link.clear_inbound()
            pen.close()


def scenario_estop(n: int = 100, seed: int = 51, lease_ms: int = 250,
                   variant_n: int = 30) -> Result:
    """n E-stops whose frames are all lost, plus variant_n of each other variant (VARIANTS)."""
    res = Result("estop", n + 3 * variant_n)
    t0 = time.perf_counter()
    rng = random.Random(seed)
    rows: list[str] = []
    setup_errors: list[str] = []
    for variant, count in (("estop_dropped", n), ("only_renewals", variant_n),
                           ("all_dropped", variant_n), ("estop_delayed", variant_n)):
        runs = []
        for i in range(count):
            wait_s = rng.uniform(0.0, 0.2)
            run = _estop_run(variant, seed + i, lease_ms, wait_s, res, f"{variant} {i}")
            if run is not None and "setup_error" in run:
                setup_errors.append(f"{variant} {i}: {run['setup_error'][:160]}")
            elif run is not None:
                runs.append(run)
        if not runs:
            continue
        stops = [r["stop_ms"] for r in runs]
        outcomes = sorted({r["outcome"] for r in runs})
        res.figures[f"{variant}: within one lease"] = (
            f"{sum(s <= lease_ms + 2 for s in stops)}/{len(runs)}")
        res.figures[f"{variant}: stop after estop() median/max ms"] = (
            f"{median(stops):.0f}/{max(stops):.0f}")
        rows.append(
            f"{variant} ({VARIANTS[variant]}): {len(runs)} runs; needle stopped after estop() "
            f"median {median(stops):.0f} ms, max {max(stops):.0f} ms (lease {lease_ms} ms); "
            f"controller in estop after median {median([r['local_ms'] for r in runs]):.1f} ms"
            f" (max {max(r['local_ms'] for r in runs):.1f}); "
            f"estop() returned after median {median([r['call_ms'] for r in runs]):.0f} ms "
            f"with {', '.join(outcomes)}; lease renewals reaching the pen after the call: max "
            f"{max(r['renewals_after'] for r in runs)}; pen ended in "
            f"{', '.join(sorted({r['pen_state'] for r in runs}))}")
    res.figures["runs whose needle could not be started (skipped)"] = len(setup_errors)
    if len(setup_errors) * 10 > res.count:
        res.fail(f"{len(setup_errors)} of {res.count} runs could not start the needle: "
                 f"{setup_errors[:2]}")
    res.details = rows + [f"not started: {e}" for e in setup_errors]  # type: ignore[attr-defined]
    res.seconds = time.perf_counter() - t0
    return res


# ============================================================================ 8. bombs

BOMB_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time, tracemalloc
    kind, path, warm = sys.argv[1:4]
    from smpdevice.envelope import load_envelope
    from smpdevice.errors import SmpError
    from smpdevice.sessions.profiles import load_profile
    load = load_profile if kind == "profile" else load_envelope

    def attempt():
        start = time.perf_counter()
        try:
            load(path)
            outcome, typed = "accepted", True
        except Exception as exc:
            text = " ".join(str(exc).split())
            outcome, typed = f"{type(exc).__name__}: {text[:160]}", isinstance(exc, SmpError)
        return time.perf_counter() - start, outcome, typed

    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cold_s, outcome, typed = attempt()  # what one CLI call pays: lazy imports and all
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb
    print(json.dumps({"cold_s": cold_s, "rss_kb": rss_kb, "outcome": outcome, "typed": typed}),
          flush=True)  # the parent keeps this much if the rest runs out of time
    try:  # a valid file: the loader's one-time costs are paid, the rest is this file's
        load(warm)
    except Exception:  # an older loader may refuse it; its imports are paid all the same
        pass
    warm_s = min(attempt()[0] for _ in range(3))
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb
    tracemalloc.start()
    attempt()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"cold_s": cold_s, "seconds": warm_s, "rss_kb": rss_kb,
                      "traced_kb": traced / 1024, "outcome": outcome, "typed": typed}))
    """
)

_HEAD = "schema_version: 1\nsession_kind: base_density\nclient_ref: C-0001\n"
_ZONE = "zones:\n  crown: {needle: 1RL 0.25mm, depth_mm: 0.40, speed_hz: 90, duty_pct: 40, " \
        "period_ms: 120}\n"
_PASS = "  - {zone: crown, duration_s: 3}\n"


def _laughs(last_key: str) -> str:
    """The billion laughs: 9 levels of 9 aliases, about 470 bytes, 9^9 leaves expanded."""
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        p, c = chr(96 + i), chr(97 + i)
        lines.append(f"{c}: &{c} [" + ", ".join(f"*{p}" for _ in range(9)) + "]")
    lines.append(f"{last_key}: *i")
    return "\n".join(lines) + "\n"


def bomb_files(folder: Path) -> list[tuple[str, str, Path]]:
    """(name, loader, path) of every bomb, written into `folder`."""
    def put(name: str, text: str | None = None, writer=None) -> Path:
        path = folder / name
        if writer is not None:
            with path.open("w") as f:
                writer(f)
        else:
            path.write_text(text or "")
        return path

    def big(head: str, unit: str, total: int):
        def writer(f) -> None:
            f.write(head)
            chunk = unit * max(1, (1 << 20) // len(unit))
            written = len(head)
            while written < total:
                f.write(chunk)
                written += len(chunk)
        return writer

    return [
        ("YAML alias bomb (billion laughs)", "profile",
         put("laughs.yaml", _HEAD.replace("client_ref: C-0001\n", "") + _laughs("client_ref"))),
        ("50 MB file", "profile", put("big.yaml", writer=big(_HEAD + _ZONE + "# ", "x" * 64,
                                                             50_000_000))),
        ("needle description of 25,000 chars", "profile",
         put("needle.yaml", _HEAD + _ZONE.replace("1RL 0.25mm", "1RL " + "2" * 24_995 + "x")
             + "plan:\n" + _PASS)),  # digits with no 'mm': a backtracking regex goes n^2
        ("plan of 1.69M passes (58 days of needle time)", "profile",
         put("plan.yaml", writer=big(_HEAD + _ZONE + "plan:\n", _PASS, 1_690_000 * len(_PASS)))),
        ("plan of 20,000 passes (under the size cap)", "profile",
         put("plan20k.yaml", _HEAD + _ZONE + "plan:\n" + _PASS * 20_000)),
        ("nesting 100,000 deep", "profile", put("deep.yaml", _HEAD + "zones: " + "[" * 100_000)),
        ("duplicate client_ref", "profile",
         put("dup.yaml", _HEAD + _ZONE + "plan:\n" + _PASS + "client_ref: C-0002\n")),
        ("envelope: YAML alias bomb", "envelope", put("env_laughs.yaml", _laughs("hairline"))),
        ("envelope: 50 MB file", "envelope",
         put("env_big.yaml", writer=big("hairline:\n  max_pass_s: 300\n# ", "x" * 64,
                                        50_000_000))),
        ("envelope: nesting 100,000 deep", "envelope",
         put("env_deep.yaml", "hairline: " + "[" * 100_000)),
        ("envelope: duplicate zone", "envelope",
         put("env_dup.yaml", "hairline:\n  max_pass_s: 300\nhairline:\n  max_pass_s: 9000\n")),
        ("envelope: limit switched off (.inf)", "envelope",
         put("env_inf.yaml", "hairline:\n  max_pass_s: .inf\n")),
    ]


def scenario_bombs(limit_s: float | None = 0.1, max_rss_mb: float = 64.0,
                   child_timeout_s: float = 120.0) -> Result:
    """Each bomb in a fresh process: refused with a typed error (SmpError), within `limit_s`
    (the loader's promise, 100 ms, once the loader's one-time costs are paid; None: not
    judged, as in tests) and `max_rss_mb` of memory (peak RSS growth, or tracemalloc's peak)."""
    res = Result("bombs", 0)
    t0 = time.perf_counter()
    rows: list[str] = []
    worst_s = worst_mb = worst_cold_s = 0.0
    typed = 0
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="smp-bombs-") as tmp:
        for name, loader, path in bomb_files(Path(tmp)):
            res.count += 1
            size = path.stat().st_size
            warm = ROOT / "examples" / ("session1_base_density.yaml" if loader == "profile"
                                        else "clinic_envelope.yaml")
            try:
                out = subprocess.run(
                    [sys.executable, "-c", BOMB_CHILD, loader, str(path), str(warm)],
                    capture_output=True, text=True, timeout=child_timeout_s, cwd=ROOT, env=env)
            except subprocess.TimeoutExpired as exc:
                partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout
                first = (partial or "").strip().splitlines()[:1]
                res.fail(f"{name}: not done within {child_timeout_s:.0f} s")
                if first:
                    fig = json.loads(first[0])
                    rows.append(f"{name} ({size:,} B): first call {fig['cold_s']:.1f} s, peak "
                                f"RSS +{fig['rss_kb'] / 1024:.0f} MB; {fig['outcome']}; repeats "
                                f"not done within {child_timeout_s:.0f} s")
                else:
                    rows.append(f"{name} ({size:,} B): still loading after "
                                f"{child_timeout_s:.0f} s")
                continue
            try:
                fig = json.loads(out.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                res.fail(f"{name}: the loader process died: {out.stderr.strip()[-300:]}")
                continue
            ms, mb = fig["seconds"] * 1e3, max(fig["rss_kb"], fig["traced_kb"]) / 1024
            worst_s, worst_mb = max(worst_s, fig["seconds"]), max(worst_mb, mb)
            worst_cold_s = max(worst_cold_s, fig["cold_s"])
            typed += fig["outcome"] != "accepted" and fig["typed"]
            if fig["outcome"] == "accepted":
                res.fail(f"{name}: accepted")
            elif not fig["typed"]:
                res.fail(f"{name}: refused with an untyped error: {fig['outcome']}")
            if limit_s is not None and fig["seconds"] > limit_s:
                res.fail(f"{name}: took {ms:.0f} ms (promise: {limit_s * 1e3:.0f} ms)")
            if mb > max_rss_mb:
                res.fail(f"{name}: cost {mb:.0f} MB of memory (limit {max_rss_mb:.0f} MB)")
            rows.append(f"{name} via load_{loader} ({size:,} B): {ms:.1f} ms "
                        f"(first call in the process {fig['cold_s'] * 1e3:.0f} ms), peak RSS "
                        f"+{fig['rss_kb'] / 1024:.1f} MB, traced peak {fig['traced_kb']:,.0f} kB;"
                        f" {fig['outcome']}")
    res.figures = {"inputs": res.count, "refused with a typed error": typed,
                   "slowest ms": worst_s * 1e3, "slowest first call ms": worst_cold_s * 1e3,
                   "most memory MB": worst_mb}
    res.details = rows  # type: ignore[attr-defined]
    res.seconds = time.perf_counter() - t0
    return res
