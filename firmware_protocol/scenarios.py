"""Scenario vectors (host frames -> the pen's replies, EVENTs and state) and decoder vectors.

Two committed files beside vectors.json, for a firmware team's test harness:
- `scenarios.json`: `[{name, about, steps}]`. Every scenario starts at power-on (the pen is
  BOOTING). A step is one of `{"send": frame}` (a command: type, seq, fields, hex),
  `{"send_hex": [hex, ...]}` (raw bytes, in reads as given, all at one instant),
  `{"advance_ms": n}` or `{"condition": name}` (cartridge_removed, cartridge_inserted,
  power_reset, pedal_up, pedal_down: between two ticks), each with `expect` (the frames the
  pen sends in response, in order, TELEMETRY left out; each `{type, seq, fields}` where
  `fields` lists only what every pen must match: EVENT without `uptime_ms`, IDENTIFY only its
  version and schema hash) and `state` after it.
  The expectations are derived from `rules.py` (the state table) and the spec's prose, not
  from the simulator, which is tested against them. The pen they assume is in
  `firmware_protocol.scenario_pen` (its IDENTIFY and its inputs at power-on); a scenario with
  `"pen": {"without": [capability names]}` runs on a pen that lacks those capabilities.
- `decoder_vectors.json`: `[{name, about, chunks, expire, frames, stats, held}]`: the byte
  stream in the reads given, whether `expire()` (inter-byte timeout) follows, the frames
  decoded (hex), the counters, and the bytes still held. The same for any other split.

    python -m firmware_protocol.scenarios --write     # after a deliberate change
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from firmware_protocol import messages as m
from firmware_protocol import rules
from firmware_protocol.codes import EventCode as E
from firmware_protocol.codes import Fault
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import LimitField as L
from firmware_protocol.codes import MsgType as T
from firmware_protocol.codes import NackReason as R
from firmware_protocol.describe import to_jsonable
from firmware_protocol.frame import StreamDecoder, encode
from firmware_protocol.messages import PROTOCOL_VERSION, SCHEMA_HASH

SCENARIOS_FILE = "scenarios.json"
DECODER_FILE = "decoder_vectors.json"

SETPOINTS = m.SetSetpoints(depth_um=1000, speed_centihz=10000, duty_permille=500,
                           period_us=100_000)
CALIBRATION = m.CalibrationWrite.from_points([(0, 40), (1000, 1010)], 1_767_225_600)
VALID: dict[T, m.Message] = {
    T.IDENTIFY_REQUEST: m.IdentifyRequest(), T.PING: m.Ping(0xDEADBEEF),
    T.SET_SETPOINTS: SETPOINTS, T.ARM: m.Arm(), T.DISARM: m.Disarm(),
    T.NEEDLE_START: m.NeedleStart(), T.NEEDLE_STOP: m.NeedleStop(), T.RETRACT: m.Retract(),
    T.LEASE_RENEW: m.LeaseRenew(500), T.ESTOP: m.EStop(), T.CLEAR_FAULTS: m.ClearFaults(),
    T.SET_TELEMETRY_RATE: m.SetTelemetryRate(50), T.CALIBRATION_READ: m.CalibrationRead(),
    T.CALIBRATION_WRITE: CALIBRATION, T.SET_FOOTSWITCH: m.SetFootswitch(1)  # OPTIONAL,
}


def frame(msg: m.Message, seq: int) -> dict[str, Any]:
    return {"type": T(msg.TYPE).name, "seq": seq, "fields": to_jsonable(msg),
            "hex": encode(msg, seq).hex()}


def ack(t: T, seq: int) -> dict[str, Any]:
    return {"type": "ACK", "seq": seq, "fields": {"acked_type": int(t)}}


def nack(t: T, seq: int, reason: R, detail: L = L.NONE) -> dict[str, Any]:
    return {"type": "NACK", "seq": seq,
            "fields": {"acked_type": int(t), "reason": int(reason), "detail": int(detail)}}


def event(code: E, state: S, faults: int = 0) -> dict[str, Any]:
    return {"type": "EVENT", "seq": 0,
            "fields": {"event": int(code), "state": int(state), "faults": int(faults)}}


def send(msg: m.Message, seq: int, expect: list, state: S) -> dict[str, Any]:
    return {"send": frame(msg, seq), "expect": expect, "state": state.name}


def advance(ms: int, expect: list, state: S) -> dict[str, Any]:
    return {"advance_ms": ms, "expect": expect, "state": state.name}


def condition(name: str, expect: list, state: S) -> dict[str, Any]:
    return {"condition": name, "expect": expect, "state": state.name}


def reply_to(msg: m.Message, seq: int) -> dict[str, Any]:
    """The reply to an accepted, valid command."""
    t = T(msg.TYPE)
    if t is T.IDENTIFY_REQUEST:
        return {"type": "IDENTIFY", "seq": seq, "fields": {
            "protocol_version": PROTOCOL_VERSION, "schema_hash": SCHEMA_HASH}}
    if t is T.PING:
        return {"type": "PONG", "seq": seq, "fields": {"token": getattr(msg, "token")}}  # noqa: B009
    if t is T.CALIBRATION_READ:
        return {"type": "CALIBRATION_TABLE", "seq": seq, "fields": {"count": 0}}
    return ack(t, seq)


BOOT = advance(60, [event(E.BOOTED, S.IDLE)], S.IDLE)


def prelude(state: S) -> tuple[list[dict[str, Any]], Fault]:
    """Steps from power-on to `state`, and the faults latched there."""
    if state is S.BOOTING:
        return [], Fault(0)
    steps = [BOOT]
    if state is S.ESTOP:
        steps.append(send(m.EStop(), 1, [ack(T.ESTOP, 1), event(E.ESTOP_LATCHED, S.ESTOP)],
                          S.ESTOP))
        return steps, Fault(0)
    steps.append(send(SETPOINTS, 1, [ack(T.SET_SETPOINTS, 1)], S.IDLE))
    if state is S.IDLE:
        return steps, Fault(0)
    lease = 20 if state is S.FAULT else 2000
    steps += [send(m.LeaseRenew(lease), 2, [ack(T.LEASE_RENEW, 2)], S.IDLE),
              send(m.Arm(), 3, [ack(T.ARM, 3)], S.ARMED)]
    if state is S.ARMED:
        return steps, Fault(0)
    steps.append(send(m.NeedleStart(), 4, [ack(T.NEEDLE_START, 4)], S.RUNNING))
    if state is S.RUNNING:
        return steps, Fault(0)
    steps.append(advance(lease, [event(E.FAULT_LATCHED, S.FAULT, Fault.LEASE_EXPIRED)],
                         S.FAULT))
    return steps, Fault.LEASE_EXPIRED


def table_scenarios() -> list[dict[str, Any]]:
    """One scenario per cell of the state table: drive to the state, send a valid command."""
    out = []
    for t in sorted(rules.ACCEPTED_IN):
        for s in S:
            steps, faults = prelude(s)
            msg, seq = VALID[t], 100
            if not rules.accepts(t, s):
                expect, after = [nack(t, seq, rules.refusal(s))], s
            else:
                after = rules.TRANSITIONS.get(t, {}).get(s, s)
                expect = [reply_to(msg, seq)]
                if after is not s and t in rules.COMMAND_EVENTS:
                    if t is T.CLEAR_FAULTS:
                        faults = Fault(0)
                    expect.append(event(rules.COMMAND_EVENTS[t], after, faults))
            steps.append(send(msg, seq, expect, after))
            out.append({"name": f"table_{t.name.lower()}_in_{s.name.lower()}",
                        "about": f"state table: {t.name} in {s.name}", "steps": steps})
    return out


def _running() -> list[dict[str, Any]]:
    return prelude(S.RUNNING)[0]


def _pings(first_seq: int, n: int) -> list[dict[str, Any]]:
    return [send(m.Ping(q), q, [{"type": "PONG", "seq": q, "fields": {"token": q}}], S.IDLE)
            for q in range(first_seq, first_seq + n)]


def behaviour_scenarios() -> list[dict[str, Any]]:
    """Duplicates, lease lapse, E-stop, faults, reboot, SEQ 0, limits: the prose of the spec."""
    idle = prelude(S.IDLE)[0]
    arm7 = send(m.Arm(), 7, [ack(T.ARM, 7)], S.ARMED)
    disarm8 = send(m.Disarm(), 8, [ack(T.DISARM, 8)], S.IDLE)
    inner = encode(m.NeedleStart(), 6)
    nested = encode(m.CalibrationWrite(8, 1_767_225_600, inner.rjust(32, b"\x01")), 20)
    two = [(0, 40), (1000, 1010)]  # both within the limits: only the unused point is wrong
    cal_dirty = m.CalibrationWrite(1, 0, m.CalibrationWrite.from_points(two, 0).raw_points)
    return [
        {"name": "duplicate_ack_is_resent_not_executed",
         "about": "a repeated ARM (same SEQ, TYPE, PAYLOAD) gets the cached ACK; the pen stays "
                  "IDLE after the DISARM in between",
         "steps": [*idle, arm7, disarm8, {**arm7, "state": "IDLE"}]},
        {"name": "duplicate_nack_is_resent_even_if_the_state_changed",
         "about": "a NACK is cached like an ACK",
         "steps": [*idle, send(m.NeedleStart(), 9, [nack(T.NEEDLE_START, 9, R.BAD_STATE)], S.IDLE),
                   send(m.LeaseRenew(2000), 10, [ack(T.LEASE_RENEW, 10)], S.IDLE), arm7,
                   send(m.NeedleStart(), 9, [nack(T.NEEDLE_START, 9, R.BAD_STATE)], S.ARMED)]},
        {"name": "same_seq_other_type_is_a_new_command",
         "about": "the window key is (SEQ, TYPE, PAYLOAD)",
         "steps": [*idle, arm7, send(m.Disarm(), 7, [ack(T.DISARM, 7)], S.IDLE)]},
        {"name": "window_holds_16_commands",
         "about": "after 16 newer commands the first is forgotten and executes again",
         "steps": [*idle, arm7, disarm8, *_pings(9, 15), arm7]},
        {"name": "identify_request_clears_the_window",
         "about": "a new connection: the repeated ARM executes",
         "steps": [*idle, arm7, disarm8,
                   send(m.IdentifyRequest(), 1, [reply_to(m.IdentifyRequest(), 1)], S.IDLE),
                   arm7]},
        {"name": "estop_is_never_deduplicated",
         "about": "ESTOP, CLEAR_FAULTS, the same ESTOP frame again: it acts again",
         "steps": [*idle,
                   send(m.EStop(), 5, [ack(T.ESTOP, 5), event(E.ESTOP_LATCHED, S.ESTOP)], S.ESTOP),
                   send(m.ClearFaults(), 6, [ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.IDLE)],
                        S.IDLE),
                   send(m.EStop(), 5, [ack(T.ESTOP, 5), event(E.ESTOP_LATCHED, S.ESTOP)], S.ESTOP),
                   send(m.EStop(), 5, [ack(T.ESTOP, 5)], S.ESTOP)]},
        {"name": "estop_while_running_forgets_setpoints",
         "about": "ACK then EVENT; motion NACKed while latched; after clearing, ARM needs "
                  "new setpoints",
         "steps": [*_running(),
                   send(m.EStop(), 5, [ack(T.ESTOP, 5), event(E.ESTOP_LATCHED, S.ESTOP)], S.ESTOP),
                   send(SETPOINTS, 6, [nack(T.SET_SETPOINTS, 6, R.ESTOP_LATCHED)], S.ESTOP),
                   send(m.ClearFaults(), 7, [ack(T.CLEAR_FAULTS, 7), event(E.CLEARED, S.IDLE)],
                        S.IDLE),
                   send(m.Arm(), 8, [nack(T.ARM, 8, R.NO_SETPOINTS)], S.IDLE)]},
        {"name": "estop_with_seq_0_acts_other_seq_0_ignored",
         "about": "SEQ 0: only ESTOP acts (ACKed with SEQ 0); a PING with SEQ 0 gets no reply",
         "steps": [*idle, send(m.Ping(1), 0, [], S.IDLE),
                   send(m.EStop(), 0, [ack(T.ESTOP, 0), event(E.ESTOP_LATCHED, S.ESTOP)],
                        S.ESTOP)]},
        {"name": "pen_to_host_frame_is_ignored", "about": "a TELEMETRY-side type sent to the pen",
         "steps": [*idle, send(m.Ack(int(T.ARM)), 9, [], S.IDLE)]},
        {"name": "lease_lapse_while_running_latches_lease_expired",
         "about": "FAULT, EVENT; NEEDLE_START refused; CLEAR_FAULTS clears with EVENT CLEARED",
         "steps": [*prelude(S.FAULT)[0],
                   send(m.NeedleStart(), 5, [nack(T.NEEDLE_START, 5, R.FAULT_LATCHED)], S.FAULT),
                   send(m.ClearFaults(), 6, [ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.IDLE)],
                        S.IDLE)]},
        {"name": "lease_lapse_while_armed_disarms",
         "about": "ARMED -> IDLE with EVENT STATE_CHANGED, no fault; setpoints kept",
         "steps": [*idle, send(m.LeaseRenew(30), 2, [ack(T.LEASE_RENEW, 2)], S.IDLE),
                   send(m.Arm(), 3, [ack(T.ARM, 3)], S.ARMED),
                   advance(30, [event(E.STATE_CHANGED, S.IDLE)], S.IDLE),
                   send(m.Arm(), 4, [ack(T.ARM, 4)], S.ARMED),
                   send(m.NeedleStart(), 5, [nack(T.NEEDLE_START, 5, R.NO_LEASE)], S.ARMED)]},
        {"name": "lease_out_of_limits",
         "about": "0 and 65535 (the vector lease_renew_65535_must_nack) are NACKed",
         "steps": [*idle,
                   send(m.LeaseRenew(0), 2, [nack(T.LEASE_RENEW, 2, R.OUT_OF_LIMITS, L.LEASE)],
                        S.IDLE),
                   send(m.LeaseRenew(0xFFFF), 10,
                        [nack(T.LEASE_RENEW, 10, R.OUT_OF_LIMITS, L.LEASE)], S.IDLE)]},
        {"name": "out_of_limits_names_the_first_field_in_wire_order",
         "about": "depth and speed both bad: detail DEPTH",
         "steps": [*idle, send(m.SetSetpoints(30000, 1, 500, 100_000), 2,
                               [nack(T.SET_SETPOINTS, 2, R.OUT_OF_LIMITS, L.DEPTH)], S.IDLE)]},
        {"name": "calibration_unused_points_must_be_zero",
         "about": "count 1 but a second point present: NACK OUT_OF_LIMITS CALIBRATION",
         "steps": [*idle, send(cal_dirty, 2,
                               [nack(T.CALIBRATION_WRITE, 2, R.OUT_OF_LIMITS, L.CALIBRATION)],
                               S.IDLE)]},
        {"name": "retract_forgets_setpoints", "about": "RUNNING -> ARMED, then NO_SETPOINTS",
         "steps": [*_running(), send(m.Retract(), 5, [ack(T.RETRACT, 5)], S.ARMED),
                   send(m.NeedleStart(), 6, [nack(T.NEEDLE_START, 6, R.NO_SETPOINTS)], S.ARMED)]},
        {"name": "needle_stop_keeps_setpoints", "about": "RUNNING -> ARMED -> RUNNING",
         "steps": [*_running(), send(m.NeedleStop(), 5, [ack(T.NEEDLE_STOP, 5)], S.ARMED),
                   send(m.NeedleStart(), 6, [ack(T.NEEDLE_START, 6)], S.RUNNING)]},
        {"name": "cartridge_removed_while_armed",
         "about": "fault latches; CLEAR_FAULTS refused while it is out, accepted once back",
         "steps": [*prelude(S.ARMED)[0],
                   condition("cartridge_removed", [], S.ARMED),
                   advance(1, [event(E.FAULT_LATCHED, S.FAULT, Fault.CARTRIDGE_REMOVED)], S.FAULT),
                   send(m.ClearFaults(), 5, [nack(T.CLEAR_FAULTS, 5, R.CONDITION_ACTIVE)],
                        S.FAULT),
                   condition("cartridge_inserted", [], S.FAULT),
                   send(m.ClearFaults(), 6, [ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.IDLE)],
                        S.IDLE)]},
        {"name": "power_reset_boots_into_fault",
         "about": "brownout: BOOTED with FAULT / POWER_RESET; CLEAR_FAULTS acknowledges it",
         "steps": [*_running(), condition("power_reset", [], S.BOOTING),
                   advance(60, [event(E.BOOTED, S.FAULT, Fault.POWER_RESET)], S.FAULT),
                   send(m.Arm(), 5, [nack(T.ARM, 5, R.FAULT_LATCHED)], S.FAULT),
                   send(m.ClearFaults(), 6, [ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.IDLE)],
                        S.IDLE)]},
        {"name": "estop_while_booting_stays_latched",
         "about": "BOOTED reports state ESTOP",
         "steps": [send(m.EStop(), 1, [ack(T.ESTOP, 1), event(E.ESTOP_LATCHED, S.ESTOP)],
                        S.ESTOP),
                   advance(60, [event(E.BOOTED, S.ESTOP)], S.ESTOP)]},
        {"name": "nested_needle_start_in_calibration_write_split",
         "about": "the outer frame is the command (NACK BAD_STATE in ARMED) for any split",
         "steps": [*prelude(S.ARMED)[0],
                   {"send_hex": [nested[:25].hex(), nested[25:].hex()],
                    "expect": [nack(T.CALIBRATION_WRITE, 20, R.BAD_STATE)], "state": "ARMED"}]},
    ]


def build_scenarios() -> list[dict[str, Any]]:
    # imported here: these scenarios build on the helpers of this module
    from firmware_protocol.scenarios_estop import estop_read_scenarios
    from firmware_protocol.scenarios_footswitch import footswitch_scenarios
    from firmware_protocol.scenarios_tick import tick_scenarios

    return (table_scenarios() + behaviour_scenarios() + estop_read_scenarios()
            + footswitch_scenarios() + tick_scenarios())


def _decoder_cases() -> list[tuple[str, str, list[bytes], bool]]:
    ping = encode(m.Ping(0x01020304), 7)
    stop = encode(m.EStop(), 8)
    inner = encode(m.NeedleStart(), 6)
    nested = encode(m.CalibrationWrite(8, 1_767_225_600, inner.rjust(32, b"\x01")), 20)
    bad = bytearray(nested)
    bad[-1] ^= 1
    cut = encode(SETPOINTS, 3)[:8]
    return [
        ("two_frames", "back to back", [ping + stop], False),
        ("byte_at_a_time", "one byte per read", [bytes([b]) for b in ping], False),
        ("garbage_between", "garbage costs only itself", [b"\x00\x13" + ping + b"\x37" + stop],
         False),
        ("false_start", "AA 55 and a PING header, then a real PING",
         [b"\xaa\x55\x04\x00\x02" + ping], False),
        ("bad_crc", "last CRC byte flipped, then a good frame", [ping[:-1] + b"\x00" + stop],
         False),
        ("bad_length", "LEN 9 for a PING", [ping[:2] + b"\x09" + ping[3:] + stop], False),
        ("unknown_type", "TYPE 0x3F", [ping[:4] + b"\x3f" + ping[5:] + stop], False),
        ("sync_split_across_reads", "AA | 55 ...", [ping[:1], ping[1:]], False),
        ("trailing_aa_held", "a lone AA may start a SYNC", [ping + b"\xaa"], False),
        ("nested_whole", "valid frame inside a payload: the outer frame only", [nested], False),
        ("nested_split", "the same, split inside the inner frame", [nested[:19], nested[19:]],
         False),
        ("nested_outer_damaged", "outer CRC bad: the inner frame is found", [bytes(bad)], False),
        ("truncated_holds_next", "a cut SET_SETPOINTS holds the ESTOP behind it", [cut + stop],
         False),
        ("truncated_then_quiet", "... until the inter-byte timeout (expire)", [cut + stop], True),
        ("short_header_then_quiet", "a SYNC with an incomplete header, then quiet: given up as "
         "garbage, nothing held", [b"\xaa\x55\x04"], True),
    ]


def build_decoder_vectors() -> list[dict[str, Any]]:
    out = []
    for name, about, chunks, expire in _decoder_cases():
        d = StreamDecoder()
        frames = [f for c in chunks for f in d.feed(c)]
        if expire:
            frames += d.expire()
        out.append({
            "name": name, "about": about, "chunks": [c.hex() for c in chunks], "expire": expire,
            "frames": [encode(f.message, f.seq).hex() for f in frames],
            "stats": {k: getattr(d.stats, k) for k in
                      ("frames", "garbage_bytes", "bad_crc", "bad_length", "unknown_type",
                       "truncated")},
            "held": d.buffered,
        })
    return out


def _path(name: str) -> Path:
    return Path(__file__).with_name(name)


def load(name: str) -> list[dict[str, Any]]:
    return json.loads(_path(name).read_text(encoding="utf-8"))


def render(data: list[dict[str, Any]]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="overwrite the two JSON files")
    args = ap.parse_args(argv)
    for name, data in ((SCENARIOS_FILE, build_scenarios()), (DECODER_FILE,
                                                               build_decoder_vectors())):
        if args.write:
            _path(name).write_text(render(data), encoding="utf-8")
        print(f"{name}: {len(data)} vectors" + (" written" if args.write else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
