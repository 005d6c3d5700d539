"""The link package's parts (notifier, clock injection, request engine) and the control tables."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from firmware_protocol.codes import Fault, FirmwareState
from smpdevice.control import PenController
from smpdevice.control.states import LEASED, POLICY, SAFE, State, reconcile
from smpdevice.link import Clock, MonotonicClock, Notifier, Operation
from tests.smpdevice.conftest import CROWN, run_needle, true_calibration

# ---------------------------------------------------------------- Notifier


def test_a_failing_listener_is_logged_and_the_others_still_hear():
    heard: list[int] = []
    notifier: Notifier[[int]] = Notifier("test")

    def broken(x: int) -> None:
        raise RuntimeError("display gone")

    notifier.add(broken)
    notifier.add(heard.append)
    with capture_logs() as logs:
        notifier.notify(7)
    assert heard == [7]
    assert any(e["event"] == "test listener failed" for e in logs)


def test_a_listener_may_remove_itself_while_being_notified():
    notifier: Notifier[[int]] = Notifier("test")
    seen: list[str] = []

    def once(x: int) -> None:
        seen.append("once")
        notifier.remove(once)

    notifier.add(once)
    notifier.add(lambda x: seen.append("always"))
    notifier.notify(1)
    notifier.notify(2)
    assert seen == ["once", "always", "always"]
    assert len(notifier) == 1


# ---------------------------------------------------------------- the host's clock


class CountingClock(MonotonicClock):
    def __init__(self) -> None:
        self.reads = 0
        self.lock = threading.Lock()

    def now(self) -> float:
        with self.lock:
            self.reads += 1
        return super().now()


# realtime: a wall clock injected (the point), and a needle run on a 200 ms lease against a
# wall-clock pen: a process a loaded machine stalls that long lets the lease lapse
@pytest.mark.realtime
def test_the_controller_and_engine_read_time_from_the_injected_clock(sim):
    clock = CountingClock()
    assert isinstance(clock, Clock)
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                               clock=clock) as pen:
        before = clock.reads
        run_needle(pen)
        pen.stop_needle()
        assert pen._engine.clock is clock and pen.link.clock is clock
        assert clock.reads > before  # retransmission timers, lease, telemetry stamps
        assert pen.telemetry.received_at_s <= clock.now()


def test_requests_are_typed_operations_carried_out_by_the_engine(sim, pen):
    from firmware_protocol.codes import MsgType
    from smpdevice.control.pen import Setpoints

    pen.set_zone("crown")
    sp = Setpoints(**CROWN)
    # in the loop thread, a request is an Operation (not sent until the engine queues it) ...
    kind = pen._engine.call(lambda: type(pen._do_set_setpoints(sp)))
    assert kind is Operation
    before = sim.firmware.executed[MsgType.SET_SETPOINTS]
    # ... and the engine sends it, waits for the ACK, and answers the caller's future
    assert pen._engine.call(pen._do_set_setpoints, sp) == sp
    assert sim.firmware.executed[MsgType.SET_SETPOINTS] == before + 1


# ---------------------------------------------------------------- the policy tables


def test_the_policy_table_decides_what_is_refused(pen):
    for action, (states, what) in POLICY.items():
        if State.IDLE in states:
            continue
        with pytest.raises(Exception, match=f"cannot {what} while idle"):
            pen._require(action)


def test_only_leased_states_renew_and_safe_states_never_do():
    assert not LEASED & SAFE
    assert State.RUNNING in LEASED and State.ESTOP in SAFE


@pytest.mark.parametrize(
    ("pen_state", "faults", "ctl", "settled", "action"),
    [
        (FirmwareState.RUNNING, Fault(0), State.ARMED, True, "stop"),
        (FirmwareState.RUNNING, Fault(0), State.ARMED, False, None),  # a start may be on its way
        (FirmwareState.RUNNING, Fault(0), State.ESTOP, True, "stop"),  # stop it, stay in estop
        (FirmwareState.RUNNING, Fault(0), State.RUNNING, True, None),
        (FirmwareState.ESTOP, Fault(0), State.RUNNING, False, "estop_latched"),
        (FirmwareState.FAULT, Fault.JAM, State.RUNNING, False, "fault_detected"),
        (FirmwareState.FAULT, Fault.JAM, State.ESTOP, False, None),
        (FirmwareState.ARMED, Fault(0), State.RUNNING, True, "fault_detected"),
        (FirmwareState.ARMED, Fault(0), State.RUNNING, False, None),
        (FirmwareState.IDLE, Fault(0), State.ARMED, True, "fault_detected"),
        (FirmwareState.IDLE, Fault(0), State.IDLE, True, None),
        (FirmwareState.FAULT, Fault.JAM, State.DISCONNECTED, True, None),
    ],
)
def test_reconciliation_table(pen_state, faults, ctl, settled, action):
    row = reconcile(pen_state, faults, ctl, settled)
    assert (row.action if row else None) == action


# ---------------------------------------------------------------- the wire's read loop


@pytest.mark.virtual_time
def test_a_reply_is_not_held_behind_a_truncated_frame_on_a_quiet_link(sim):
    """A long frame cut short just before a reply, then silence (slow telemetry): the reader
    gives the truncated candidate up after the inter-byte timeout and hands the reply over.
    Before, the reply stayed held behind the candidate until enough bytes came to fill its
    claimed length: four tries' ACKs are not enough (40 of 49 bytes), so it failed as a
    LinkTimeout although every reply had arrived."""
    from firmware_protocol import encode
    from firmware_protocol.messages import Identify

    with PenController.connect(sim.url, calibration=true_calibration(sim), telemetry_hz=1,
                               lease_ms=1000, clock=sim.clock) as pen:
        seq = pen.telemetry.telemetry_seq
        sim.time.wait_until(lambda: pen.telemetry.telemetry_seq != seq)  # just after one
        identify = next(msg for _, d, _, msg in pen.link.history if isinstance(msg, Identify))
        cut = encode(identify, 1)[:10]  # a 59-byte IDENTIFY frame, cut after 10 bytes
        sim.link.inject_junk(cut)  # written just before the pen's next frame: the reply
        t0 = sim.clock.now()
        pen.retract()  # RETRACT -> ACK, on the wire right behind the cut frame
        assert pen.link.decoder.stats.truncated == 1
        assert sim.clock.now() - t0 < 0.3  # virtual seconds: well before the next telemetry


@pytest.mark.virtual_time
def test_the_handshake_is_carried_out_by_the_engine(sim, mocker):
    from firmware_protocol.messages import IdentifyRequest, SetTelemetryRate
    from smpdevice.link import Link, RequestEngine

    submit = mocker.spy(RequestEngine, "submit")
    with PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock):
        steps = [type(call.args[1].steps[0]) for call in submit.call_args_list]
    assert steps[:2] == [IdentifyRequest, SetTelemetryRate]
    assert not hasattr(Link, "request"), "no second retry loop beside the engine"


def test_waits_are_measured_on_the_injected_virtual_clock():
    from smpdevice.errors import SmpError
    from tests.smpdevice.virtual_time import virtual_sim

    # Steps of 10 ms (the firmware reports every 10 ms) rather than the fixtures' 2 ms: half a
    # minute of the pen's time is 3,000 steps, each a hand-off between the clock's driver and
    # the host's threads (15,000 took 5-6 s of wall and 2 CPU-s on loaded cores).
    with virtual_sim(step_s=0.01, seed=7) as sim:
        pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                    clock=sim.clock)
        try:
            t0 = sim.clock.now()
            with pytest.raises(SmpError, match="waited 30"):
                pen.wait_for_state(State.ARMED, timeout_s=30.0)  # half a minute, virtual
            assert 30.0 <= sim.clock.now() - t0 < 30.1
            assert pen.state is State.IDLE  # the lease, telemetry and silence watch ran all along
        finally:
            pen.close()


def test_a_reply_waits_behind_pen_news_already_queued_for_the_loop():
    # Wire order: EVENT ESTOP_LATCHED, then the ACK of CLEAR_FAULTS. The event is queued for the
    # loop; if the reader completed the ACK at once, the clear ran first and the stale event
    # latched the E-stop again after it (seen in test_estop_then_clear_with_a_reason).
    from firmware_protocol import Frame
    from firmware_protocol.messages import Ack
    from smpdevice.link.engine import RequestEngine
    from smpdevice.link.items import Reply, Run
    from smpdevice.link.wire import LinkStats

    class _Link:
        stats = LinkStats(rx_frames=12)

        def set_reply_hook(self, hook):
            self.hook = hook

    engine = RequestEngine(_Link(), host=None, lease_ms=300, telemetry_hz=50)  # loop not started
    news = []
    engine.post(news.append, "estop latched")
    reply = Frame(seq=7, message=Ack(acked_type=11))
    assert engine._on_reply(reply) is True
    queued = [engine._queue.get_nowait() for _ in range(2)]
    assert isinstance(queued[0], Run) and queued[0].args == ("estop latched",)
    assert isinstance(queued[1], Reply) and queued[1].frame is reply
    assert queued[1].rx_no == 12  # its place among the frames, for the reports after it
