"""The pen in software: firmware, physics and fault injection. Never imports smpdevice.

    from simulators import PenSimulator, VirtualClock
    with PenSimulator(seed=3, clock=VirtualClock()) as sim:
        port = serial.serial_for_url(sim.url)   # pensim://pen1
        ...
        sim.advance(0.1)                         # 100 ms of pen time
        sim.gauge.read_mm()                      # true needle protrusion

See docs/simulator.md.
"""

import serial as _serial

from simulators.clock import RealClock, VirtualClock
from simulators.faults import (
    DeviceFault,
    FaultPlan,
    FaultSpecError,
    LinkFaultConfig,
    LinkFaults,
    ScheduledFault,
    parse_fault_spec,
)
from simulators.firmware import PenFirmware
from simulators.gauge import Gauge, GaugeServer, read_gauge
from simulators.pen_model import PenModel
from simulators.physics import PenPhysics
from simulators.sim import HostPort, LinkDisconnected, PenSimulator, PortInUse, lookup

# serial.serial_for_url("pensim://...") finds simulators.protocol_pensim through this list.
if "simulators" not in _serial.protocol_handler_packages:
    _serial.protocol_handler_packages.append("simulators")

__all__ = [
    "DeviceFault",
    "FaultPlan",
    "FaultSpecError",
    "Gauge",
    "GaugeServer",
    "HostPort",
    "LinkDisconnected",
    "LinkFaultConfig",
    "LinkFaults",
    "PenFirmware",
    "PenModel",
    "PenPhysics",
    "PenSimulator",
    "PortInUse",
    "RealClock",
    "ScheduledFault",
    "VirtualClock",
    "lookup",
    "parse_fault_spec",
    "read_gauge",
]
