"""The wire contract between the smpdevice host and the pen's firmware.

Pure code: no I/O, no threads, no clock. `docs/protocol.md` is its specification and
`firmware_protocol/vectors.json` its golden test vectors.
"""

from firmware_protocol.codes import (
    Capability,
    EventCode,
    Fault,
    FirmwareState,
    FootswitchMode,
    LimitField,
    MsgType,
    NackReason,
    TelemetryFlag,
)
from firmware_protocol.frame import (
    MAX_FRAME,
    SYNC,
    DecoderStats,
    Frame,
    FrameError,
    StreamDecoder,
    decode_frame,
    encode,
)
from firmware_protocol.messages import PROTOCOL_VERSION, REGISTRY, SCHEMA_HASH, Message

__all__ = [
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "REGISTRY",
    "SCHEMA_HASH",
    "SYNC",
    "Capability",
    "DecoderStats",
    "EventCode",
    "Fault",
    "FirmwareState",
    "FootswitchMode",
    "Frame",
    "FrameError",
    "LimitField",
    "Message",
    "MsgType",
    "NackReason",
    "StreamDecoder",
    "TelemetryFlag",
    "decode_frame",
    "encode",
]
