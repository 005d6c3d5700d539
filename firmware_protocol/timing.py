"""The link's numbers: line settings, the inter-byte timeout, deadlines, retries, defaults.

Published in docs/protocol.md (section "Link timing", generated from `TIMING`), obeyed by the
simulator's firmware and by the host's link. Plain integers, so a C firmware can copy them.
"""

from __future__ import annotations

BAUD_RATE = 115_200  # 8 data bits, no parity, 1 stop bit, no flow control
# A receiver that has held part of a frame for this long with no new byte gives the candidate
# up (StreamDecoder.expire): it bounds how long a frame can wait behind a truncated one.
# 50 ms is ~8x the time of the longest frame at 115200 baud and covers USB CDC batching.
INTER_BYTE_TIMEOUT_MS = 50
# The pen replies within this long after a command's last byte, at any telemetry rate it
# accepts: TELEMETRY gives way to replies and EVENTs (docs/protocol.md section 12).
REPLY_DEADLINE_MS = 10
HOST_RETRY_INITIAL_MS = 100  # first retransmission timeout, before any round trip is measured
HOST_RETRY_MIN_MS = 20
HOST_RETRY_MAX_MS = 500
HOST_ATTEMPTS = 4  # sends of one command (the first and 3 retransmissions), same SEQ
TELEMETRY_DEFAULT_HZ = 100  # after boot and after every reboot
BOOT_MAX_MS = 50  # from power-on to EVENT BOOTED
DEDUP_WINDOW = 16  # commands remembered for duplicate detection
FOOTSWITCH_STOP_MS = 1  # REQUIRED mode: pedal released -> needle stopped, one firmware tick
# A safety stop (ESTOP, a lease lapse, a fault, the cartridge pulled) cuts the needle drive
# within one 1 ms tick, and only then is the ACK or EVENT queued: the host is never told of a
# stop the pen has not made. The simulator cuts it in the tick that finds the cause.
STOP_MS = 1
# Retracting: the depth actuator is back at 0 within this, from any depth up to depth_max_um
# (the simulated pen: 2500 um at 10 mm/s = 250 ms).
RETRACT_MAX_MS = 250

# (name, value, unit, meaning), in the order the spec lists them.
TIMING: tuple[tuple[str, int, str, str], ...] = (
    ("BAUD_RATE", BAUD_RATE, "bit/s",
     "UART 8N1, no flow control (USB CDC ignores the rate; TCP for the simulator)"),
    ("INTER_BYTE_TIMEOUT_MS", INTER_BYTE_TIMEOUT_MS, "ms",
     "silence after which a receiver gives up a partial frame and decodes what followed it"),
    ("REPLY_DEADLINE_MS", REPLY_DEADLINE_MS, "ms",
     "the pen answers every command within this time of its last byte (TELEMETRY gives way: "
     "below)"),
    ("HOST_RETRY_INITIAL_MS", HOST_RETRY_INITIAL_MS, "ms",
     "the host's first retransmission timeout (later: smoothed RTT + 4 x deviation)"),
    ("HOST_RETRY_MIN_MS", HOST_RETRY_MIN_MS, "ms", "lower bound of the retransmission timeout"),
    ("HOST_RETRY_MAX_MS", HOST_RETRY_MAX_MS, "ms",
     "upper bound of the retransmission timeout (each retry doubles it up to this)"),
    ("HOST_ATTEMPTS", HOST_ATTEMPTS, "sends",
     "sends of one command with the same SEQ and payload before the link is declared lost"),
    ("TELEMETRY_DEFAULT_HZ", TELEMETRY_DEFAULT_HZ, "Hz",
     "telemetry rate after boot, until SET_TELEMETRY_RATE"),
    ("BOOT_MAX_MS", BOOT_MAX_MS, "ms", "power-on to EVENT BOOTED (the pen is BOOTING meanwhile)"),
    ("DEDUP_WINDOW", DEDUP_WINDOW, "commands",
     "commands the pen remembers for duplicate detection (section 5)"),
    ("FOOTSWITCH_STOP_MS", FOOTSWITCH_STOP_MS, "ms",
     "footswitch mode REQUIRED: longest time from the pedal's release to the needle stopped "
     "(the firmware checks the pedal every tick, before it drives the needle)"),
    ("STOP_MS", STOP_MS, "ms",
     "longest time from the last byte of an ESTOP, or from the tick that finds a lease lapse, "
     "a fault or the cartridge removed, to the needle drive off; the ACK or EVENT is queued "
     "only after the drive is off (section 9)"),
    ("RETRACT_MAX_MS", RETRACT_MAX_MS, "ms",
     "longest time from the start of a retraction (RETRACT, ESTOP, a fault, DISARM, any move "
     "to IDLE, a reboot) to the depth actuator at 0, from any depth up to "
     "IDENTIFY.depth_max_um (section 7)"),
)
