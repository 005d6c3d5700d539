"""Recording and replay, for incident analysis (issue 15, part 3).

- `recorder`: every session records the raw frames both ways (`smpdevice.records.frames`).
- `script`, `pen`: a recording as a conversation, and the recorded pen behind `replay://`.
- `inputs`: the technician's stops and E-stops, recorded on `/input` and applied by a replay.
- `parts`: a session's recordings found, hash-checked, split into parts (one per resumed run).
- `runner`: `smp replay SESSION` (a fresh controller against the recorded pen, part by part)
  and `into_sim`: `--into-sim` (the recorded host commands into the simulator).
"""

import serial

if "smpdevice.replay" not in serial.protocol_handler_packages:
    # pyserial resolves `replay://NAME` by importing smpdevice.replay.protocol_replay.
    serial.protocol_handler_packages.append("smpdevice.replay")
