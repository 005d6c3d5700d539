"""The generated C codec against the Python codec on inputs the suite's corpus leaves out:
expire() between any two reads (not only at the end), empty reads, streams dense in sync
bytes, frames nested two deep; and the doc's -Wconversion promise (docs/protocol.md s14)."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from firmware_protocol.c_codec import SOURCE_NAME, generate_c_codec
from firmware_protocol.frame import FrameError, StreamDecoder, decode_frame
from firmware_protocol.frame import encode as py_encode
from firmware_protocol.messages import CalibrationWrite, NeedleStart, Ping
from tests.firmware_protocol.helpers import all_frames
from tests.firmware_protocol.test_c_codec import counters_line, frame_line, run
from tests.run_once import run_dir, run_lock

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-O1"]
DRIVER = Path(__file__).parent / "c" / "codec_driver.c"


@pytest.fixture(scope="module")
def strict_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The codec_driver built against the codec with the doc's full flag set (-Wconversion).
    Built once per test run, whichever worker asks first (tests/run_once.py): `make test`
    hands these tests to every worker, and each built the same driver (two gcc runs)."""
    root = run_dir(tmp_path_factory)
    built = root / "c_codec_strict"
    with run_lock(root, "c_codec_strict"):
        if not built.is_dir():
            out = Path(tempfile.mkdtemp(prefix="c_codec_strict-", dir=root))
            for name, text in generate_c_codec().items():
                (out / name).write_text(text, encoding="utf-8")
            # the codec itself under -Wconversion (the promise is about the generated files)
            subprocess.run([GCC, *STRICT, "-c", str(out / SOURCE_NAME), "-o",
                            str(out / "codec.o")], check=True, capture_output=True, text=True,
                           timeout=120)
            subprocess.run([GCC, "-std=c99", "-O1", "-I", str(out), str(out / SOURCE_NAME),
                            str(DRIVER), "-o", str(out / "codec_driver")], check=True,
                           capture_output=True, text=True, timeout=120)
            out.rename(built)  # whole, or not there: a failed build leaves nothing done
    return built / "codec_driver"


def _nested2(rnd: random.Random) -> bytes:
    """A CALIBRATION_WRITE inside whose raw points a NEEDLE_START sits inside... only 32 bytes
    fit, so: an outer CALIBRATION_WRITE holding a NEEDLE_START, the outer CRC broken or not,
    itself glued after a broken copy of another outer frame."""
    inner = py_encode(NeedleStart(), rnd.randrange(0, 256))
    raw = bytes(rnd.randrange(0, 32 - len(inner) + 1)) + inner
    outer = bytearray(py_encode(CalibrationWrite(rnd.randrange(0, 9), 1, raw.ljust(32, b"\0")),
                                rnd.randrange(256)))
    if rnd.random() < 0.5:
        outer[rnd.randrange(2, len(outer))] ^= 1 << rnd.randrange(8)
    return bytes(outer)


def _odd_stream(rnd: random.Random) -> list[bytes]:
    frames = all_frames()
    data = bytearray()
    for _ in range(rnd.randint(1, 6)):
        pick = rnd.random()
        if pick < 0.3:
            data += rnd.choice(frames)
        elif pick < 0.5:
            data += _nested2(rnd)
        elif pick < 0.8:  # sync-dense junk: AA, 55, known LEN/TYPE bytes
            data += bytes(rnd.choice([0xAA, 0x55, 0x00, 0x04, 0x02, 0x0A, 0x25, 0x0E, 0x45])
                          for _ in range(rnd.randint(1, 12)))
        else:  # a frame cut short
            f = rnd.choice(frames)
            data += f[: rnd.randrange(1, len(f))]
    cuts = sorted(rnd.sample(range(0, len(data) + 1), min(len(data) + 1, rnd.randint(0, 5))))
    bounds = [0, *cuts, len(data)]
    return [bytes(data[a:b]) for a, b in itertools.pairwise(bounds)]


def test_expire_between_any_reads_and_empty_reads_decide_as_python(strict_driver: Path) -> None:
    rnd = random.Random(1130)
    cmds: list[str] = []
    want: list[str] = []
    for _ in range(1500):
        dec = StreamDecoder()
        cmds.append("R")
        for chunk in _odd_stream(rnd):
            cmds.append("S " + chunk.hex() if chunk else "C")
            if chunk:
                want += [frame_line(f) for f in dec.feed(chunk)]
            else:
                want.append(counters_line(dec))
            if rnd.random() < 0.4:  # the line went quiet here
                cmds += ["E", "C"]
                want += [frame_line(f) for f in dec.expire()]
                want.append(counters_line(dec))
        cmds += ["E", "C"]
        want += [frame_line(f) for f in dec.expire()]
        want.append(counters_line(dec))
    got = run(strict_driver, cmds)
    assert got == want


@pytest.mark.parametrize("data", [
    b"", b"\xaa", b"\xaa\x55", bytes(8), b"\xaa\x55" + bytes(7),
    py_encode(Ping(1), 1) + b"\x00",  # one byte too many
    py_encode(Ping(1), 1)[:-1],  # one too few
    b"\xaa\x55\x04\x01\x02" + bytes(8),  # right header, zero CRC
    b"\xaa\x55\x00\x01\x40" + bytes(4),  # type 0x40: between the ranges
    b"\xaa\x55\x00\x01\xff" + bytes(4),
    b"\xaa\x55\x41\x01\x02" + bytes(69),  # LEN 65 > MAX_PAYLOAD
])
def test_decode_frame_refuses_odd_single_frames_for_the_same_reason(strict_driver, data):
    (line,) = [x for x in run(strict_driver, ["D " + data.hex()]) if x.startswith("D ")]
    try:
        decode_frame(data)
        py = 0
    except FrameError as exc:
        text = str(exc)
        py = (1 if "too short" in text else 2 if "no sync" in text else
              3 if "unknown message type" in text else 4 if "LEN says" in text else
              5 if "frame is" in text else 6 if "bad CRC" in text else -1)
    assert line == f"D {py}", (data.hex(), line, py)
