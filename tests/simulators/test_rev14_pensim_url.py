"""Review 14 (proto 6-10): pensim:// URLs, names and a long read timeout.

What was wrong:
- 6: a repeated option (`pensim://?lease=0&lease=1500`) opened through pyserial's
  `serial_for_url` with only its last value checked (`smp` refused it in
  transport.check_port; the handler did not). Now the handler refuses it, naming the option.
- 7: a fresh `pensim://` took the next automatic name `penN` even when a simulator the user
  had named `penN` was running: a bare ValueError. Now taken names are skipped.
- 8: `sim.url` of a simulator named with `#`, `?` or a space did not reach it (the URL cut the
  name). Now `sim.url` percent-quotes the name and `pensim://NAME` decodes it.
- 9: `simulators.lookup("pensim://?name=X&clock=virtual")`, the URL that made X, gave None.
- 10: `HostPort.read(1, 1e10)` raised OverflowError (past threading.TIMEOUT_MAX) where
  docs/simulator.md allows any timeout >= 0. Now such a timeout waits for ever.
"""

from __future__ import annotations

import threading

import pytest
import serial

import simulators  # also registers the pensim:// handler
from simulators import PenSimulator, VirtualClock


@pytest.mark.parametrize("url, option", [
    ("pensim://?faults=jam@nan&faults=&clock=virtual", "faults"),  # a bad spec, then none
    ("pensim://?lease=0&lease=1500&clock=virtual", "lease"),       # lease 0 is out of range
    ("pensim://?seed=1&seed=1&clock=virtual", "seed"),              # even the same value
])
def test_a_repeated_option_is_refused_naming_it(url, option):
    with pytest.raises(serial.SerialException, match=f"option {option} is given 2 times"):
        serial.serial_for_url(url)


def test_a_fresh_pensim_port_never_collides_with_a_named_simulator():
    probe = PenSimulator(clock=VirtualClock())  # unnamed: "penN", the process's counter
    next_auto = int(probe.name.removeprefix("pen")) + 1
    probe.close()
    names = [f"pen{next_auto + i}" for i in range(3)]  # what the next fresh ports would get
    taken = [PenSimulator(name=name, clock=VirtualClock()) for name in names]
    try:
        with serial.serial_for_url("pensim://?clock=virtual") as port:
            assert port.simulator.name not in names
            assert all(simulators.lookup(sim.name) is sim for sim in taken)
    finally:
        for sim in taken:
            sim.close()


@pytest.mark.parametrize("name", ["bench#2", "chair 1?b", "100%", "a/b", "plain-name_1.x"])
def test_sim_url_reaches_its_simulator(name):
    with PenSimulator(name=name, clock=VirtualClock()) as sim:
        with serial.serial_for_url(sim.url) as port:
            assert port.simulator is sim
        assert simulators.lookup(sim.url) is sim
        assert simulators.lookup(name) is sim


def test_an_unquoted_hash_is_refused_not_cut():
    with PenSimulator(name="bench", clock=VirtualClock()) as bench:
        with PenSimulator(name="bench#2", clock=VirtualClock()), \
                pytest.raises(serial.SerialException, match="%23"):
            serial.serial_for_url("pensim://bench#2")  # once reached "bench"
        assert bench.open_ports == 0


def test_a_plain_name_keeps_its_url():
    with PenSimulator(name="bench-3", clock=VirtualClock()) as sim:
        assert sim.url == "pensim://bench-3"


def test_lookup_of_the_creating_url_finds_its_simulator():
    url = "pensim://?name=rev14-lookup-bench&clock=virtual"
    with serial.serial_for_url(url) as port:
        assert simulators.lookup(url) is port.simulator
        assert port.simulator.name == "rev14-lookup-bench"
    assert simulators.lookup(url) is None  # closed with its port


def test_a_long_finite_read_timeout_is_no_overflow_error():
    """Real time: nothing is waiting when the read starts, so it waits (the old code raised
    OverflowError there); the pen boots and its first telemetry ends the wait."""
    got: list[object] = []
    with PenSimulator() as sim:
        port = sim.open_port()

        def read() -> None:
            try:
                got.append(port.read(1, 1e10))
            except Exception as exc:  # the test reports it
                got.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=10.0)  # a hang must fail the test, not the run (sim.close ends it)
    assert not reader.is_alive(), "the read never returned"
    assert got and isinstance(got[0], bytes) and got[0], got
