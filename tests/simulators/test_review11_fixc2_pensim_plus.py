"""REV2B R8: docs/simulator.md's multi-type fault spec, `drop_type=ESTOP+NEEDLE_STOP`, works
in a `pensim://` URL: the query keeps `+` as `+` (a form decoding read it as a space and the
spec was refused), through pyserial's `serial_for_url` and through `smp`."""

from __future__ import annotations

import serial
from click.testing import CliRunner

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import MsgType
from simulators import lookup
from smpdevice.cli import main

URL = "pensim://?clock=virtual&faults=drop_type=ESTOP+NEEDLE_STOP"


def test_serial_for_url_takes_the_documented_multi_type_spec() -> None:
    port = serial.serial_for_url(URL, timeout=0.05)
    try:
        sim = lookup(port)
        port.write(encode(m.Ping(1), 201) + encode(m.EStop(), 202) + encode(m.NeedleStop(), 203)
                   + encode(m.Ping(2), 204))
        decoder, seqs = StreamDecoder(), []
        while 204 not in seqs:  # condition: the last ping's answer (virtual time: no wait)
            seqs += [f.seq for f in decoder.feed(port.read(1 << 16))
                     if f.message.TYPE == MsgType.PONG]
        assert seqs == [201, 204]  # both types lost on the way, the pings answered
        assert sim.link.stats["dropped_frames_in"] == 2
        assert sim.firmware.executed[MsgType.ESTOP] == 0
        assert sim.firmware.executed[MsgType.NEEDLE_STOP] == 0
    finally:
        port.close()


def test_a_space_is_still_written_percent_20_and_refused_as_no_type() -> None:
    result = CliRunner().invoke(main, ["info", "--port",
                                       "pensim://?faults=drop_type=ESTOP%20NEEDLE_STOP"],
                                env={"SMP_SIM_CLOCK": "virtual"})
    assert result.exit_code == 2, result.output
    assert "'ESTOP NEEDLE_STOP' is no host->pen message type" in result.output


def test_smp_info_takes_the_documented_multi_type_spec() -> None:
    result = CliRunner().invoke(main, ["info", "--port", URL])
    assert result.exit_code == 0, result.output
    assert "SMP-" in result.output


def test_a_replay_reads_the_recorded_ports_fault_spec_as_the_port_did() -> None:
    from smpdevice.replay.sim_pen import recorded_simulator_options

    url = "pensim://?seed=3&faults=drop_type=ESTOP+NEEDLE_STOP&lease=800"
    assert recorded_simulator_options(url) == {"faults": "drop_type=ESTOP+NEEDLE_STOP",
                                               "lease": "800"}
