"""The catalogue: every message round-trips, codes are unique, the schema hash tracks layouts."""

from __future__ import annotations

from typing import Annotated

import pytest

from firmware_protocol import messages
from firmware_protocol.codes import (
    FAULT_DESCRIPTIONS,
    Capability,
    EventCode,
    Fault,
    FirmwareState,
    LimitField,
    MsgType,
    NackReason,
    TelemetryFlag,
)
from firmware_protocol.frame import MAX_PAYLOAD, OVERHEAD, decode_frame, encode
from firmware_protocol.messages import REGISTRY, SCHEMA_HASH, CalibrationTable, Message, Wire
from firmware_protocol.rules import ACCEPTED_IN

from .helpers import all_samples, check_each


def test_every_message_round_trips() -> None:
    samples = all_samples()
    assert len(samples) >= 3 * len(REGISTRY)  # every type, at its low, middle and high values
    check_each(samples, _round_trips, lambda case: f"{type(case[0]).__name__} seq {case[1]}")


def _round_trips(case: tuple[Message, int]) -> None:
    msg, seq = case
    frame = encode(msg, seq)
    assert len(frame) == msg.SIZE + OVERHEAD
    got = decode_frame(frame)
    assert got.seq == seq
    assert type(got.message) is type(msg)
    assert got.message == msg


def test_registry_holds_every_msgtype_and_nothing_else() -> None:
    assert set(REGISTRY) == {int(t) for t in MsgType}
    assert all(t == REGISTRY[t].TYPE for t in REGISTRY)
    assert all(cls.SIZE <= MAX_PAYLOAD for cls in REGISTRY.values())


def test_every_host_command_has_a_state_rule() -> None:
    assert {t for t in MsgType if t < 0x40} == set(ACCEPTED_IN)


@pytest.mark.parametrize(
    "table",
    [MsgType, NackReason, LimitField, Fault, FirmwareState, EventCode, Capability, TelemetryFlag],
)
def test_codes_unique(table: type) -> None:
    values = [m.value for m in table]
    names = [m.name for m in table]
    assert len(values) == len(set(values)), f"{table.__name__} reuses a value"
    assert len(names) == len(set(names))
    # Enum would silently alias a duplicate value; __members__ still lists the alias.
    assert len(table.__members__) == len(values), f"{table.__name__} has an alias"


def test_flags_are_single_bits() -> None:
    for table in (Fault, Capability, TelemetryFlag):
        for m in table:
            assert m.value and m.value & (m.value - 1) == 0, m


def test_described_codes_have_descriptions() -> None:
    for table in (MsgType, NackReason, LimitField, FirmwareState, EventCode):
        for m in table:
            assert m.description, m
    assert set(FAULT_DESCRIPTIONS) == set(Fault)


def test_crc_extra_differs_between_same_size_messages() -> None:
    # Same size + same CRC_EXTRA would make a corrupted TYPE byte much likelier to pass.
    by_size: dict[int, list[int]] = {}
    for cls in REGISTRY.values():
        by_size.setdefault(cls.SIZE, []).append(cls.CRC_EXTRA)
    for size, extras in by_size.items():
        assert len(extras) == len(set(extras)), f"size {size}: CRC_EXTRA collision {extras}"


def _hash_with(monkeypatch: pytest.MonkeyPatch, cls_body: dict) -> tuple[int, int]:
    """Schema hash and CRC_EXTRA of the catalogue with SET_SETPOINTS redeclared as `cls_body`."""
    registry = {t: c for t, c in REGISTRY.items() if t != MsgType.SET_SETPOINTS}
    monkeypatch.setattr(messages, "REGISTRY", registry)
    cls = type("SetSetpoints", (Message,), {"__annotations__": cls_body})
    cls = messages.message(MsgType.SET_SETPOINTS)(cls)
    return messages._schema_hash(), cls.CRC_EXTRA


def test_schema_hash_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    same = {
        "depth_um": Annotated[int, Wire("h")],
        "speed_centihz": Annotated[int, Wire("H")],
        "duty_permille": Annotated[int, Wire("H")],
        "period_us": Annotated[int, Wire("I")],
    }
    h, extra = _hash_with(monkeypatch, same)
    assert h == SCHEMA_HASH
    assert extra == REGISTRY[MsgType.SET_SETPOINTS].CRC_EXTRA


@pytest.mark.parametrize(
    "change",
    [
        {"depth_um": Annotated[int, Wire("i")]},  # wider type
        {"depth_mm": Annotated[int, Wire("h")]},  # renamed field
        {"extra": Annotated[int, Wire("B")]},  # added field
    ],
    ids=["type", "name", "added"],
)
def test_schema_hash_changes_when_a_field_changes(
    monkeypatch: pytest.MonkeyPatch, change: dict
) -> None:
    body = {
        "depth_um": Annotated[int, Wire("h")],
        "speed_centihz": Annotated[int, Wire("H")],
        "duty_permille": Annotated[int, Wire("H")],
        "period_us": Annotated[int, Wire("I")],
    }
    if "depth_mm" in change:
        rest = {k: v for k, v in body.items() if k != "depth_um"}
        body = {"depth_mm": change["depth_mm"], **rest}
    else:
        body.update(change)
    h, extra = _hash_with(monkeypatch, body)
    assert h != SCHEMA_HASH
    assert extra != REGISTRY[MsgType.SET_SETPOINTS].CRC_EXTRA


def test_calibration_points_round_trip() -> None:
    pts = [(0, 40), (-500, -480), (2500, 2460)]
    table = CalibrationTable.from_points(pts, 1_700_000_000)
    assert table.count == 3
    assert decode_frame(encode(table, 9)).message.points() == pts
    with pytest.raises(ValueError, match="at most 8"):
        CalibrationTable.from_points([(0, 0)] * 9, 0)
