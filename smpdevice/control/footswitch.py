"""The footswitch as an enabling device: the station's mode and what it needs of the pen.

`required`: the needle runs only while the pedal is down; the pen itself refuses a start with
the pedal up and stops the needle within one firmware tick of a release (docs/protocol.md,
"The footswitch as an enabling device"), so the stop never depends on the link. `optional`:
the pedal is shown, the needle does not depend on it. `off`: the pedal is ignored. The
controller sends the mode before every ARM (and calibration spin), so the pen never runs on a
mode left by a reboot or another host.
"""

from __future__ import annotations

from firmware_protocol.codes import Capability, FootswitchMode
from smpdevice.errors import SmpError

FOOTSWITCH_MODES = ("required", "optional", "off")  # the same as smpdevice.config's
_WIRE = {"required": FootswitchMode.REQUIRED, "optional": FootswitchMode.OPTIONAL,
         "off": FootswitchMode.OFF}
HOW_TO_CHANGE = ("change `footswitch` in the station config file (`smp config show` says "
                 "where it is and where the value comes from) or the environment variable "
                 "SMP_FOOTSWITCH")


class FootswitchError(SmpError):
    """The footswitch setting is not valid, or the pen cannot honour it."""


class PedalReleased(SmpError):
    """`required`: the pedal went up while the controller itself ran the needle (a
    calibration's speed check); the pen stopped it and nothing starts it again by itself."""


def footswitch_setting(value: object) -> str:
    """`value` ("required", "optional", "off", any case, as the config file takes it) as the
    controller keeps it; None: the station's setting (smpdevice.config), default "optional"."""
    if value is None:
        from smpdevice.config import setting  # the station config (a file read): only if asked

        value = setting("footswitch").value or "optional"
    if not isinstance(value, str) or value.lower() not in FOOTSWITCH_MODES:
        raise FootswitchError(
            f"footswitch={value!r:.40} is refused: allowed: {', '.join(FOOTSWITCH_MODES)}. "
            f"Pass one of them, or {HOW_TO_CHANGE}.")
    return value.lower()


def wire_mode(setting: str) -> FootswitchMode:
    """The SET_FOOTSWITCH mode for a setting."""
    return _WIRE[setting]


def check_capability(setting: str, capabilities: Capability, serial: str) -> None:
    """`required` on a pen without a footswitch: refuse it rather than run without one."""
    if setting == "required" and Capability.FOOTSWITCH not in capabilities:
        raise FootswitchError(
            f"footswitch=required, but pen {serial} has no footswitch (its IDENTIFY lacks "
            f"Capability FOOTSWITCH), so the needle could not be made to depend on the pedal. "
            f"Fit a pen with a footswitch, or {HOW_TO_CHANGE} to `optional` or `off`.")
