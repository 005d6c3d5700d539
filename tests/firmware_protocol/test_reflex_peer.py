"""The C reflex peer (firmware_protocol/c/reflex_peer.c), built on the generated codec, over a
real pty: it answers as the spec says, and the real controller drives it.

Real-time by nature (a separate process behind a pty): every wait is on a condition with a
generous timeout, never a timing assertion. Skipped only when gcc is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from firmware_protocol import messages as m
from firmware_protocol import scenarios
from firmware_protocol.codes import (
    Capability,
    EventCode,
    FirmwareState,
    LimitField,
    MsgType,
    NackReason,
)
from firmware_protocol.describe import to_jsonable
from firmware_protocol.frame import StreamDecoder, encode
from firmware_protocol.messages import PROTOCOL_VERSION, SCHEMA_HASH
from tests.firmware_protocol.test_scenarios import _matches
from tests.run_once import run_dir, run_lock

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C reflex peer "
                                "cannot be built here (apt-get install gcc)")
PEER = Path(__file__).resolve().parents[2] / "firmware_protocol" / "c" / "reflex_peer.c"
WAIT_S = 10.0  # generous: 2 loaded cores in CI


@pytest.fixture(scope="module")
def peer_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The peer, compiled once per test run: by the first pytest-xdist worker that needs it,
    under a lock the others wait on (a compile is 0.3 CPU-s; each worker made its own)."""
    from firmware_protocol.c_codec import SOURCE_NAME, generate_c_codec

    with run_lock(run_dir(tmp_path_factory), "reflex_peer") as root:
        exe = root / "reflex_peer" / "reflex_peer"
        if not exe.is_file():  # not built yet, or a build that failed
            out = exe.parent
            out.mkdir(exist_ok=True)
            for name, text in generate_c_codec().items():
                (out / name).write_text(text, encoding="utf-8")
            partial = out / "reflex_peer.partial"
            subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1",
                            "-I", str(out), str(out / SOURCE_NAME), str(PEER), "-o",
                            str(partial)], check=True, capture_output=True, timeout=120)
            partial.rename(exe)
    return exe


@pytest.fixture
def pty_path(peer_exe: Path) -> Iterator[str]:
    proc = subprocess.Popen([str(peer_exe)], stdout=subprocess.PIPE, text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Wire:
    """The host side at the frame level: send a command, collect what comes back."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, timeout=0.05)
        self.decoder = StreamDecoder()
        self.pending: list[tuple[int, m.Message, bytes]] = []

    def read(self) -> bytes:
        """What has arrived, or the first byte within the port's timeout."""
        return self.port.read(max(1, self.port.in_waiting))

    def replies(self, count: int) -> list[tuple[int, m.Message, bytes]]:
        """The next `count` non-telemetry frames as (seq, message, raw frame)."""
        deadline = time.monotonic() + WAIT_S
        while len(self.pending) < count and time.monotonic() < deadline:
            for f in self.decoder.feed(self.read()):
                if not isinstance(f.message, m.Telemetry):
                    self.pending.append((f.seq, f.message, encode(f.message, f.seq)))
        out, self.pending = self.pending[:count], self.pending[count:]
        assert len(out) == count, f"expected {count} frames, got {out}"
        return out

    def send(self, msg: m.Message, seq: int, expect: int = 1) -> list[tuple[int, m.Message, bytes]]:
        self.port.write(encode(msg, seq))
        return self.replies(expect)

    def state(self) -> FirmwareState:
        """The state in the first telemetry frame sent after a PING sent now."""
        assert not self.pending, self.pending
        return FirmwareState(self.telemetry().state)

    def telemetry(self) -> m.Telemetry:
        """The first TELEMETRY the peer sends after a PING sent now (its state after what
        came before)."""
        self.port.write(encode(m.Ping(7), 250))
        pong_seen = False
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for f in self.decoder.feed(self.read()):
                if isinstance(f.message, m.Pong):
                    pong_seen = True
                elif pong_seen and isinstance(f.message, m.Telemetry):
                    return f.message
        raise AssertionError("no telemetry after the PONG")


def test_the_peer_answers_as_the_spec_says(pty_path: str) -> None:
    wire = Wire(pty_path)
    [(seq, ident, _)] = wire.send(m.IdentifyRequest(), 1)
    assert seq == 1 and isinstance(ident, m.Identify)
    assert (ident.protocol_version, ident.schema_hash) == (PROTOCOL_VERSION, SCHEMA_HASH)
    assert Capability.SIMULATED in Capability(ident.capabilities)
    # several fields out of limits: the first in wire order is named
    bad = m.SetSetpoints(depth_um=ident.depth_max_um + 1, speed_centihz=0, duty_permille=500,
                         period_us=100_000)
    [(_, nack, _)] = wire.send(bad, 2)
    assert nack == m.Nack(MsgType.SET_SETPOINTS, NackReason.OUT_OF_LIMITS, LimitField.DEPTH)
    good = m.SetSetpoints(depth_um=800, speed_centihz=10_000, duty_permille=500,
                          period_us=100_000)
    [(_, ack, raw)] = wire.send(good, 3)
    assert ack == m.Ack(MsgType.SET_SETPOINTS)
    [(_, _, again)] = wire.send(good, 3)  # a retransmission: the same reply, byte for byte
    assert again == raw
    assert wire.send(m.Arm(), 4)[0][1] == m.Ack(MsgType.ARM)
    assert wire.send(m.NeedleStart(), 5)[0][1] == m.Nack(MsgType.NEEDLE_START,
                                                         NackReason.NO_LEASE, 0)
    assert wire.send(m.Arm(), 0, expect=0) == []  # SEQ 0: ignored, no reply
    (_, ack, _), (seq, event, _) = wire.send(m.EStop(), 6, expect=2)  # ACK first, then EVENT
    assert ack == m.Ack(MsgType.ESTOP) and seq == 0
    assert (event.event, event.state) == (EventCode.ESTOP_LATCHED, FirmwareState.ESTOP)
    assert wire.state() is FirmwareState.ESTOP
    assert wire.send(m.Arm(), 7)[0][1] == m.Nack(MsgType.ARM, NackReason.ESTOP_LATCHED, 0)


# The peer keeps wall time in its own process: a stall of the test between LEASE_RENEW and ARM
# longer than the lease is refused NO_LEASE (beside two busy loops and pass 1's workers).
@pytest.mark.realtime
def test_a_lapsed_lease_disarms_and_while_running_latches_lease_expired(pty_path: str) -> None:
    wire = Wire(pty_path)
    # Long enough that the command after a renewal lands inside it on two loaded cores (at
    # 100 ms an ARM came too late once and was refused NO_LEASE), short enough to wait out.
    lease_ms = 600
    wire.send(m.SetSetpoints(800, 10_000, 500, 100_000), 1)
    wire.send(m.LeaseRenew(lease_ms), 2)
    wire.send(m.Arm(), 3)
    [(_, event, _)] = wire.replies(1)  # no renewal: the lease lapses while ARMED
    assert (event.event, event.state) == (EventCode.STATE_CHANGED, FirmwareState.IDLE)
    wire.send(m.SetSetpoints(800, 10_000, 500, 100_000), 4)
    wire.send(m.Arm(), 5)
    wire.send(m.LeaseRenew(lease_ms), 6)
    assert wire.send(m.NeedleStart(), 7)[0][1] == m.Ack(MsgType.NEEDLE_START)
    [(_, event, _)] = wire.replies(1)  # ... and while RUNNING: a latched fault
    assert (event.event, event.state) == (EventCode.FAULT_LATCHED, FirmwareState.FAULT)
    assert event.faults == 0x20  # LEASE_EXPIRED


# The controller on wall time over a real pty, its replies from another process: beside two
# busy loops and four workers the peer went unscheduled through a request's four tries (CI,
# session 20), so it runs in the realtime pass, as the other tests of this kind do.
@pytest.mark.realtime
def test_the_controller_drives_the_peer(pty_path: str) -> None:
    from smpdevice.control import PenController, State
    from smpdevice.control.calibration import Calibration

    cal = Calibration.linear(pen_serial="REFLEX-0001", technician="test", offset_mm=0.0,
                             gain=1.0)
    with PenController.connect(pty_path, calibration=cal) as pen:
        assert pen.simulated  # the peer says it is not a pen
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.6, speed_hz=100, duty_pct=40, period_ms=100)
        pen.arm()
        pen.start_needle(settle_timeout_s=WAIT_S)
        assert pen.wait_for_state(State.RUNNING, timeout_s=WAIT_S) is State.RUNNING
        pen.estop()
        assert pen.state is State.ESTOP
        pen.clear_faults()
        assert pen.wait_for_state(State.IDLE, timeout_s=WAIT_S) is State.IDLE


@pytest.mark.realtime  # a 2 s wall-clock lease across ARM and NEEDLE_START (as above)
def test_identify_request_empties_the_window(pty_path: str) -> None:
    """Review 7c R01: the window was emptied (len 0) but new entries went on at the old write
    position, so the lookup saw the OLD connection's entries: a new NEEDLE_STOP matching an old
    one was answered from the cache and not executed, the needle kept running."""
    wire = Wire(pty_path)
    wire.send(m.IdentifyRequest(), 1)  # connection 1
    assert wire.send(m.NeedleStop(), 9)[0][1] == m.Ack(MsgType.NEEDLE_STOP)
    wire.send(m.Ping(7), 10)
    wire.send(m.IdentifyRequest(), 1)  # connection 2: old sequence numbers mean nothing
    wire.send(m.SetSetpoints(800, 10_000, 500, 100_000), 2)
    wire.send(m.LeaseRenew(2000), 3)
    wire.send(m.Arm(), 4)
    assert wire.send(m.NeedleStart(), 5)[0][1] == m.Ack(MsgType.NEEDLE_START)
    assert wire.send(m.NeedleStop(), 9)[0][1] == m.Ack(MsgType.NEEDLE_STOP)
    assert wire.state() is FirmwareState.ARMED, "NEEDLE_STOP ACKed from a stale cache"


@pytest.mark.parametrize("first", [m.NeedleStart(), m.ClearFaults()], ids=["start", "clear"])
def test_an_estop_supersedes_a_command_before_it_in_the_same_read(
    pty_path: str, first: m.Message
) -> None:
    """Review 7c R04 and R02 on the peer: the ESTOP acts first, the command before it in the
    same read is NACKed ESTOP_LATCHED and not executed (docs/protocol.md section 9)."""
    wire = Wire(pty_path)
    running = isinstance(first, m.ClearFaults)  # RUNNING: a CLEAR_FAULTS there is accepted
    base = _armed(wire, running)
    wire.port.write(encode(first, base + 5) + encode(m.EStop(), base + 6))  # one write: one read
    (s1, ack, _), (_, event, _), (s3, nack, _) = wire.replies(3)
    assert (s1, ack) == (base + 6, m.Ack(MsgType.ESTOP))
    assert (event.event, event.state) == (EventCode.ESTOP_LATCHED, FirmwareState.ESTOP)
    assert (s3, nack) == (base + 5, m.Nack(first.TYPE, NackReason.ESTOP_LATCHED, 0))
    assert wire.state() is FirmwareState.ESTOP


def _armed(wire: Wire, running: bool) -> int:
    """Setpoints, a 2 s lease, ARM (and NEEDLE_START when `running`); the first SEQ used. The
    peer keeps wall time: on loaded cores the lease can lapse between two of these steps (seen
    in CI: ARMED -> IDLE, then NEEDLE_START refused). That run proves nothing about the E-stop
    and is set up again, with fresh SEQs (the same ones would be answered from the duplicate
    window), at most three times."""
    want = FirmwareState.RUNNING if running else FirmwareState.ARMED
    for base in (0, 10, 20):
        steps = [m.SetSetpoints(800, 10_000, 500, 100_000), m.LeaseRenew(2000), m.Arm()]
        acked = [wire.send(msg, base + i + 1)[0][1] == m.Ack(msg.TYPE)
                 for i, msg in enumerate([*steps, *([m.NeedleStart()] if running else [])])]
        wire.pending.clear()  # an EVENT of a lapsed lease, if any
        if all(acked) and wire.state() is want:
            return base
    raise AssertionError(f"the peer never stayed {want.name} through its set-up")


def _replayable(scenario: dict) -> bool:
    """Scenarios the peer can run: from power-on and the boot (the peer has none: it is IDLE
    at once), then only frames sent, no waiting and no physical condition (it has none)."""
    steps = scenario["steps"]
    return (bool(steps) and steps[0].get("advance_ms") == 60
            and all("send" in s or "send_hex" in s for s in steps[1:]))


_REPLAYED = [s for s in scenarios.load(scenarios.SCENARIOS_FILE) if _replayable(s)]


@pytest.mark.parametrize("scenario", _REPLAYED, ids=[s["name"] for s in _REPLAYED])
def test_the_peer_follows_the_scenario(peer_exe: Path, scenario: dict) -> None:
    """The scenario vectors the peer can run, frame for frame; the state after each step is the
    one in the first TELEMETRY the peer sent after that step's replies. The peer keeps wall
    time: a run in which this machine took longer than a granted lease (a stall on loaded
    cores) proves nothing and is played again on a fresh peer, at most three times."""
    for _attempt in range(3):
        proc = subprocess.Popen([str(peer_exe)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            failure = _play(Wire(proc.stdout.readline().strip()), scenario)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        if failure is None:
            return
        message, lease_outlasted = failure
        if not lease_outlasted:
            break
    raise AssertionError(message)


def _play(wire: Wire, scenario: dict) -> tuple[str, bool] | None:
    """None if the peer followed `scenario`; else what differed, and whether a lease granted
    in it had run out on the wall clock by then (the machine, not the peer, is to blame)."""
    lease_ends = float("inf")
    for i, step in enumerate(scenario["steps"][1:], 1):
        parts = [step["send"]["hex"]] if "send" in step else step["send_hex"]
        for part in parts:
            for frame in StreamDecoder().feed(bytes.fromhex(part)):
                if isinstance(frame.message, m.LeaseRenew):
                    lease_ends = time.monotonic() + frame.message.lease_ms / 1000
            wire.port.write(bytes.fromhex(part))
        want = step["expect"]
        if not want:
            continue  # ignored (SEQ 0, pen -> host type): nothing to wait for
        got = [{"type": MsgType(msg.TYPE).name, "seq": seq, "fields": to_jsonable(msg)}
               for seq, msg, _ in wire.replies(len(want))]
        state = _next_telemetry_state(wire)
        if not all(map(_matches, got, want)) or state != step["state"]:
            return (f"{scenario['name']} step {i}: got {got} in state {state}; want {want} in "
                    f"state {step['state']}", time.monotonic() >= lease_ends)
    return None


def _next_telemetry_state(wire: Wire) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for f in wire.decoder.feed(wire.read()):
            if isinstance(f.message, m.Telemetry):
                return FirmwareState(f.message.state).name
            wire.pending.append((f.seq, f.message, encode(f.message, f.seq)))
    raise AssertionError("no telemetry")
