"""Gauges that talk to a person (click prompts), and `open_gauge`, which picks a gauge from a
URL: `tcp://HOST:PORT`, `pensim://NAME`, `manual`, or None (a `pensim://` pen's own gauge, else
the technician). The instruments themselves live in `smpdevice.calibration.gauges`.

`ManualGauge`: a person reading a dial gauge and typing the value, with every entry checked (a
number, in range, not a factor-10 typo, growing with the actuator). At any prompt `r` redoes
the previous point and `q` aborts without saving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from smpdevice.calibration.gauges import (
    CalibrationAborted,
    Gauge,
    GaugeError,
    GaugeRequest,
    RedoPoint,
    SimulatorGauge,
    TcpGauge,
)
from smpdevice.calibration.readings import EntryError, parse_reading


class NoGaugeReading(GaugeError):
    """The technician's input ended (`< /dev/null`, `<&-`): no one can type the readings."""

    exit_code = 1  # an aborted calibration (README "Exit status")

    def __init__(self) -> None:
        super().__init__(
            "calibration aborted: standard input ended, so no gauge reading can be typed; "
            "nothing was saved and the pen keeps its previous calibration. Run it at a "
            "terminal, or give the gauge's address with --gauge tcp://HOST:PORT")


def _click_prompt(text: str) -> str:
    from smpdevice.cli.interrupt import CTRL_C

    try:
        return click.prompt(text, default="", show_default=False, prompt_suffix=" ")
    except click.exceptions.Abort:
        if CTRL_C.requested:  # Ctrl-C at the prompt: the command line says it
            raise
        raise NoGaugeReading() from None


class ManualGauge:
    """A technician with a dial gauge: prompts, checks each entry, re-asks until it is valid."""

    manual = True
    description = "manual gauge (typed by the technician)"

    def __init__(
        self,
        prompt: Callable[[str], str] = _click_prompt,
        echo: Callable[[str], None] = click.echo,
    ) -> None:
        self.prompt = prompt
        self.echo = echo

    def _ask(self, question: str, parse: Callable[[str], float | None]) -> float | None:
        while True:
            text = self.prompt(question).strip()
            if text.lower() == "q":
                raise CalibrationAborted()
            if text.lower() == "r":
                raise RedoPoint()
            try:
                return parse(text)
            except EntryError as exc:
                self.echo(f"  refused: {exc}")

    def read_mm(self, request: GaugeRequest) -> float:
        hint = f" (expected about {request.expected_mm:.2f})" if request.expected_mm else ""
        self.echo(
            f"{request.label}: the actuator is at {request.actuator_mm:.3f} mm. "
            f"Read the gauge{hint}."
        )

        def parse(text: str) -> float:
            low = request.low_mm
            value = parse_reading(
                text, low=low, high=request.high_mm, expected=request.expected_mm
            )
            if value <= 0 and not request.allow_zero:
                raise EntryError(
                    "a reading of 0 mm means the tip is still inside the cartridge, but it "
                    "must be out here. Check that the gauge touches the tip, then re-enter."
                )
            if request.check is not None:
                request.check(value)
            return value

        value = self._ask(f"  gauge reading in mm (r = {request.redo}, q = abort):", parse)
        assert value is not None
        return value

    def read_tachometer_hz(
        self, commanded_hz: float, low_hz: float, high_hz: float
    ) -> float | None:
        """An optional tachometer reading; blank skips it."""

        def parse(text: str) -> float | None:
            if not text:
                return None
            return parse_reading(
                text, low=low_hz, high=high_hz, expected=commanded_hz,
                what="tachometer reading", unit="Hz",
            )

        return self._ask(
            f"  tachometer reading in Hz at {commanded_hz:g} Hz (blank = no tachometer, "
            "r = redo previous speed, q = abort):",
            parse,
        )

    def close(self) -> None:
        """Nothing to close."""


def open_gauge(
    gauge_url: str | None,
    *,
    port_url: str | None = None,
    port: Any = None,
    manual: ManualGauge | None = None,
) -> Gauge:
    """The gauge for a calibration run.

    `gauge_url`: `tcp://HOST:PORT`, `pensim://NAME`, `manual`, or None. With None, a `pensim://`
    pen's own gauge is used (found through `port`, the open port object, or `port_url`);
    otherwise a `ManualGauge`.
    """
    if gauge_url is None:
        if port_url is not None and port_url.startswith("pensim://"):
            return SimulatorGauge(port if port is not None else port_url)
        return manual or ManualGauge()
    if gauge_url == "manual":
        return manual or ManualGauge()
    if gauge_url.startswith("tcp://"):
        return TcpGauge(gauge_url)
    if gauge_url.startswith("pensim://"):
        return SimulatorGauge(gauge_url)
    raise GaugeError(
        f"unknown gauge {gauge_url!r}; use tcp://HOST:PORT (a gauge server such as `smp sim` "
        "prints), pensim://NAME (a simulator in this process) or manual"
    )
