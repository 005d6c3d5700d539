"""pyserial URL handler for `replay://NAME`: a port whose other end is a recorded pen
(`smpdevice.replay.pen`). Registered by importing `smpdevice.replay`."""

from __future__ import annotations

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from smpdevice.replay.pen import ReplayPen, lookup

__all__ = ["Serial"]


class Serial(SerialBase):
    """pyserial's side of `replay://NAME` (loaded by `serial_for_url`)."""

    def __init__(self, *args, **kwargs) -> None:
        self.pen: ReplayPen | None = None
        self.generation = 0  # the recorded pen's connection this port was opened for
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        name = str(self.port or "").removeprefix("replay://").strip("/")
        pen = lookup(name)
        if pen is None:
            raise SerialException(f"no replay named {name!r} is running (`smp replay` makes one)")
        self.generation = pen.open_port()  # SerialException while its cable is out
        self.pen = pen
        self.is_open = True

    def close(self) -> None:
        self.pen = None
        self.is_open = False

    def _reconfigure_port(self, *args, **kwargs) -> None:
        """Nothing to configure: the bytes come from a recording."""

    def _pen(self) -> ReplayPen:
        if self.pen is None:
            raise PortNotOpenError()
        return self.pen

    @property
    def in_waiting(self) -> int:
        return self._pen().in_waiting(self.generation)

    def read(self, size: int = 1) -> bytes:
        return self._pen().read(size, self.generation)

    def write(self, data) -> int:
        return self._pen().write(bytes(data), self.generation)

    def flush(self) -> None:
        """Writes are handed over at once."""

    def reset_input_buffer(self) -> None:
        self._pen().read(1 << 30, self.generation)

    def reset_output_buffer(self) -> None:
        """No output buffer."""

    def cancel_read(self) -> None:
        """Reads never block."""
