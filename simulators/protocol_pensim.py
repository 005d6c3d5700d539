"""pyserial URL handler for `pensim://`: a serial port whose other end is a simulated pen.

The host enables it once with `serial.protocol_handler_packages.append("simulators")` (importing
`simulators` does it too); then `serial.serial_for_url(url)` imports this module.

    pensim://NAME             attach to the live simulator registered as NAME (see
                              `PenSimulator.url`, which percent-quotes it: bench%232 is
                              "bench#2"); reopening reaches the same pen, faults and all.
                              Like a serial device it has one owner: while a pensim:// port
                              on that pen is open, another open raises SerialException
                              ("pensim://NAME is in use ...")
    pensim://                 a fresh real-time simulator (seed 0), closed with this port
    pensim://?seed=3&faults=drop%3D0.01,jam@2&baud=115200&lease=1500&telemetry=200&name=bench
                              the same with options: seed, faults (fault spec, see
                              simulators.faults), baud (wire pacing), lease (lease_max_ms),
                              telemetry (default rate, Hz), name (register it for others);
                              each at most once (a repeat is refused, naming it)
    pensim://?clock=virtual   the pen runs on a virtual clock that the host connected to it
                              advances whenever it waits and has caught up: a session plays as
                              fast as the computer computes it (`port.host_clock`; the default
                              is the SMP_SIM_CLOCK environment setting, else clock=real)

`read` honours `timeout` (None blocks, 0 polls) and raises SerialException once the simulator
disconnects; `write` raises it too. The simulator behind an open port is `port.simulator`.
"""

from __future__ import annotations

import re
import time
import urllib.parse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, to_bytes

from simulators.clock import Clock, sim_clock
from simulators.faults import parse_fault_spec
from simulators.pen_model import (
    BAUD_RANGE,
    LEASE_MAX_MS_RANGE,
    SEED_MAX,
    TELEMETRY_HZ_RANGE,
    PenModel,
)
from simulators.sim import (
    HostPort,
    LinkDisconnected,
    PenSimulator,
    PortInUse,
    lookup,
)
from simulators.urls import query_options, url_name

_OPTIONS = ("seed", "faults", "baud", "lease", "telemetry", "name", "clock")


def _parse(url: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "pensim":
        raise SerialException(f"expected a pensim:// URL, got {url!r}")
    if parts.fragment or url.endswith("#"):  # `pensim://bench#2` would reach "bench"
        raise SerialException(f"{url!r} has a '#': a simulator's name is percent-quoted in its "
                              "URL (write '#' as %23, as sim.url does)")
    name = url_name(url, option=False)
    given = query_options(parts.query)
    twice = sorted(key for key, values in given.items() if len(values) > 1)
    if twice:  # the last one used to win, the others never checked (transport.check_port too)
        raise SerialException(f"pensim option {twice[0]} is given {len(given[twice[0]])} "
                              f"times in {url!r}; give each option once")
    options = {k: v[0] for k, v in given.items()}
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise SerialException(
            f"unknown pensim option(s) {sorted(unknown)} in {url!r}; known: {', '.join(_OPTIONS)}"
        )
    return name, options


_EXAMPLES = {"seed": 3, "lease": 1500, "telemetry": 200, "baud": 115200}


def _whole(options: dict[str, str], key: str, low: int, high: int) -> int:
    text = options[key]
    # ASCII digits only: int() would also take "1_0", " 5" and full-width digits.
    value = int(text) if re.fullmatch(r"-?[0-9]{1,20}", text) else None
    if value is None or not low <= value <= high:
        # text where a number goes (seed=abc, 1_0, " 5") is "no whole number", as smp says
        what = "is out of range" if re.fullmatch(r"-?[0-9]+", text) else "is no whole number"
        raise SerialException(f"pensim option {key}={text[:40]!r} {what}: a whole number "
                              f"{low}..{high} in ASCII digits; e.g. "
                              f"pensim://?{key}={_EXAMPLES[key]}")
    return value


def simulator_from_options(options: dict[str, str]) -> PenSimulator:
    """A fresh simulator from pensim:// query options (each one range-checked), on real time
    unless clock=virtual (or SMP_SIM_CLOCK=virtual) says otherwise."""
    model = PenModel(seed=_whole(options, "seed", -SEED_MAX, SEED_MAX) if "seed" in options else 0)
    if "lease" in options:
        model.lease_max_ms = _whole(options, "lease", *LEASE_MAX_MS_RANGE)
    if "telemetry" in options:
        model.telemetry_default_hz = _whole(options, "telemetry", *TELEMETRY_HZ_RANGE)
    baud = _whole(options, "baud", *BAUD_RANGE) if "baud" in options else None
    try:
        plan = parse_fault_spec(options.get("faults"))
    except ValueError as exc:
        raise SerialException(f"bad pensim option faults: {exc}") from None
    try:
        clock = sim_clock(options.get("clock"))
    except ValueError as exc:
        raise SerialException(f"bad pensim option: {exc}") from None
    return PenSimulator(model=model, clock=clock, link_faults=plan, baud=baud,
                        name=options.get("name"))


class Serial(SerialBase):
    """A pyserial port connected to a `PenSimulator`."""

    def __init__(self, *args, **kwargs) -> None:
        self.simulator: PenSimulator | None = None
        self._link: HostPort | None = None
        self._owns_simulator = False
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        name, options = _parse(str(self._port))
        if name:
            if options:
                raise SerialException(
                    f"pensim://{name} attaches to a running simulator; options go on a new "
                    f"one: pensim://?name={name}&..."
                )
            sim = lookup(name)
            if sim is None:
                raise SerialException(
                    f"no simulator named {name!r} is running; start one with "
                    f"PenSimulator(name={name!r}) or open pensim:// for a fresh one"
                )
            owns = False
        else:
            sim, owns = simulator_from_options(options), True
        try:
            self._link = sim.open_port(exclusive=True)
        except (LinkDisconnected, PortInUse) as exc:
            if owns:
                sim.close()
            raise SerialException(str(exc)) from None
        self.simulator, self._owns_simulator = sim, owns
        self.is_open = True

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        if self.simulator is not None and self._owns_simulator:
            self.simulator.close()
        self.simulator = None
        self.is_open = False

    @property
    def host_clock(self) -> Clock | None:
        """The pen's virtual clock when the host is to advance it (clock=virtual, or a
        simulator made with `VirtualClock(host_driven=True)`); None otherwise."""
        sim = self.simulator
        clock = sim.clock if sim is not None else None
        return clock if getattr(clock, "host_driven", False) else None

    def _reconfigure_port(self, *args, **kwargs) -> None:
        """Baud rate and framing settings mean nothing here (pacing is the simulator's)."""

    def _port_link(self) -> HostPort:
        if not self.is_open or self._link is None:
            raise PortNotOpenError()
        return self._link

    @property
    def in_waiting(self) -> int:
        try:
            return self._port_link().in_waiting
        except LinkDisconnected as exc:
            raise SerialException(str(exc)) from None

    def read(self, size: int = 1) -> bytes:
        link = self._port_link()
        if size <= 0:
            return b""
        timeout = self._timeout
        try:
            if self._inter_byte_timeout is None or timeout == 0:
                return link.read(size, timeout)
            # inter-byte timeout: after the first byte, stop when the line goes quiet
            first = link.read(1, timeout)
            if not first:
                return first
            out = bytearray(first)
            deadline = None if timeout is None else time.monotonic() + timeout
            while len(out) < size:
                wait = self._inter_byte_timeout
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    break
                more = link.read(size - len(out), wait)
                if not more:
                    break
                out += more
            return bytes(out)
        except LinkDisconnected as exc:
            raise SerialException(str(exc)) from None

    def write(self, data) -> int:
        link = self._port_link()
        try:
            return link.write(to_bytes(data))
        except LinkDisconnected as exc:
            raise SerialException(str(exc)) from None

    def flush(self) -> None:
        """Writes are handed over at once: nothing to wait for."""
        self._port_link()

    def reset_input_buffer(self) -> None:
        try:
            self._port_link().reset_input_buffer()
        except LinkDisconnected as exc:
            raise SerialException(str(exc)) from None

    def reset_output_buffer(self) -> None:
        """Writes are handed over at once: there is no output buffer to drop."""
        self._port_link()

    @property
    def out_waiting(self) -> int:
        self._port_link()
        return 0

    def cancel_read(self) -> None:
        """Reads wake at least every timeout; nothing to cancel early."""

    # modem lines: a USB CDC pen has none worth simulating
    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
