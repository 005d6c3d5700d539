"""pyserial URL handler for `replay://NAME`: a port whose other end is a recorded pen
(`smpdevice.replay.pen`). Registered by importing `smpdevice.replay`."""

from smpdevice.replay.pen import Serial

__all__ = ["Serial"]
