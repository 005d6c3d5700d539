"""Review 16 QA: a pensim seed (or lease, telemetry, baud) given as text is "no whole number",
not "out of range"; and an open session whose recording's `/meta` names a port with such a
seed, or a seed that is no whole number, is refused by `smp replay --into-sim` (one line,
exit 2), never replayed on seed 0 standing in for it."""

from __future__ import annotations

import pytest

from smpdevice.records.frames import FrameWriter, read_recording
from smpdevice.transport import TransportError, check_port
from tests.smpdevice.replay.rev16_station import last_session_id, out, run_session, smp, station


@pytest.mark.parametrize("option", ["seed=abc", "seed=", "lease=1.5", "telemetry=x",
                                    "baud=9600baud", "seed=%EF%BC%93"])
def test_a_pensim_number_given_as_text_is_no_whole_number(option):
    with pytest.raises(TransportError, match="is no whole number") as caught:
        check_port(f"pensim://?clock=virtual&{option}")
    assert "out of range" not in str(caught.value)


def test_a_pensim_number_out_of_range_is_still_for_its_handler():
    check_port("pensim://?seed=-3")  # digits: its handler checks the range
    check_port("pensim://?seed=99999999999999999999999")


@pytest.mark.parametrize("meta", [{"port": "pensim://?clock=virtual&seed=abc", "sim_seed": None},
                                  {"port": "pensim://?clock=virtual&seed=abc"},
                                  {"sim_seed": "abc"}, {"port": "pensim://?lease=many"}])
def test_an_open_sessions_recording_naming_a_seed_that_is_no_number_is_refused(tmp_path, meta):
    data = station(tmp_path / "data")
    assert run_session(data, "jam@1-1.1").returncode == 4  # left open: no hash protects it
    sid = last_session_id(data)
    path = data / "recordings" / f"{sid}.mcap"
    rec = read_recording(path)
    path.unlink()
    edited = {k: v for k, v in {**rec.meta, **meta}.items() if v is not None}
    writer = FrameWriter(path, edited, start_s=0.0)
    for entry in rec.entries:
        writer.add(entry.channel, entry.t_s, entry.data)
    writer.seal()
    replay = smp(data, "replay", sid, "--into-sim")
    assert replay.returncode == 2, out(replay)
    assert "no whole number" in replay.stderr and len(replay.stderr.splitlines()) == 1, out(replay)
