"""The generated C codec, compiled with gcc, decides exactly as the Python codec.

One driver process per check (tests/firmware_protocol/c/codec_driver.c) reads commands on
stdin and prints the frames and counters the C code produced; the same text is built from
the Python codec and compared line for line. Skipped only when gcc is absent.
"""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_protocol.c_codec import HEADER_NAME, SOURCE_NAME, generate_c_codec
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import MAX_FRAME, Frame, FrameError, StreamDecoder, decode_frame
from firmware_protocol.frame import encode as py_encode
from firmware_protocol.messages import REGISTRY, SCHEMA_HASH, CalibrationWrite, Ping
from firmware_protocol.scenarios import DECODER_FILE, load
from firmware_protocol.vectors import load_vectors
from smpdevice.cli import main as smp_main
from tests.firmware_protocol.helpers import all_frames

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C codec "
                                "cannot be compiled here (apt-get install gcc)")
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]
DRIVER = Path(__file__).parent / "c" / "codec_driver.c"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("c_codec")
    for name, text in generate_c_codec().items():
        (out / name).write_text(text, encoding="utf-8")
    exe = out / "codec_driver"
    subprocess.run([GCC, *CFLAGS, "-I", str(out), str(out / SOURCE_NAME), str(DRIVER),
                    "-o", str(exe)], check=True, capture_output=True, text=True, timeout=120)
    return exe


def run(exe: Path, commands: Iterable[str]) -> list[str]:
    text = "".join(c + "\n" for c in commands)
    done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, timeout=120,
                          check=True)
    return done.stdout.splitlines()


def frame_line(frame: Frame) -> str:
    msg = frame.message
    return f"F {int(msg.TYPE)} {frame.seq} {msg.pack().hex()} {py_encode(msg, frame.seq).hex()}"


def counters_line(dec: StreamDecoder) -> str:
    s = dec.stats
    return (f"C {s.frames} {s.garbage_bytes} {s.bad_crc} {s.bad_length} {s.unknown_type} "
            f"{s.truncated} {dec.buffered}")


def python_stream(chunks: list[bytes]) -> tuple[list[str], list[str]]:
    """(commands for the driver, the lines the Python decoder says it must print)."""
    dec = StreamDecoder()
    cmds, want = ["R"], []
    for chunk in chunks:
        cmds.append("S " + chunk.hex())
        want += [frame_line(f) for f in dec.feed(chunk)]
    cmds.append("C")
    want.append(counters_line(dec))
    cmds += ["E", "C"]
    want += [frame_line(f) for f in dec.expire()]
    want.append(counters_line(dec))
    return cmds, want


def test_the_generated_code_compiles_clean_and_carries_the_catalogue(driver: Path) -> None:
    files = generate_c_codec()
    header = files[HEADER_NAME]
    assert f"#define SMP_SCHEMA_HASH 0x{SCHEMA_HASH:08X}u" in header
    for t, cls in REGISTRY.items():
        name = MsgType(t).name
        assert f"SMP_MSG_{name} = 0x{t:02X}" in header
        assert f"#define SMP_CRC_EXTRA_{name} 0x{cls.CRC_EXTRA:02X}u" in header
    assert "malloc" not in files[SOURCE_NAME] and "free(" not in files[SOURCE_NAME]
    assert generate_c_codec() == files  # deterministic: regenerating changes nothing


def test_every_golden_vector_round_trips_through_c(driver: Path) -> None:
    vectors = load_vectors()
    cmds = []
    for v in vectors:
        cmds += ["D " + v["hex"], "R", "S " + v["hex"], "C"]
    lines = run(driver, cmds)
    for v in vectors:
        decoded = decode_frame(bytes.fromhex(v["hex"]))
        assert lines.pop(0) == "D 0", v["name"]
        f_line = lines.pop(0)
        assert f_line == frame_line(decoded) and f_line.endswith(" " + v["hex"]), v["name"]
        fields = {}
        while lines[0].startswith("V "):
            _, name, value = lines.pop(0).split(" ", 2)
            fields[name] = value
        want = {k: (val if isinstance(val, str) else str(val)) for k, val in v["fields"].items()}
        assert fields == want, v["name"]  # the struct holds the values, not just the bytes
        assert lines.pop(0) == f_line, v["name"]  # the stream parser gives the same frame
        assert lines.pop(0) == "C 1 0 0 0 0 0 0", v["name"]
    assert lines == []


def test_every_decoder_vector_gives_the_committed_frames_and_counters(driver: Path) -> None:
    vectors = load(DECODER_FILE)
    cmds = []
    for v in vectors:
        cmds += ["R", *("S " + c for c in v["chunks"]), *(["E"] if v["expire"] else []), "C"]
    lines = run(driver, cmds)
    for v in vectors:
        frames = [lines.pop(0) for _ in v["frames"]]
        assert [f.split()[-1] for f in frames] == v["frames"], v["name"]
        s = v["stats"]
        assert lines.pop(0) == (f"C {s['frames']} {s['garbage_bytes']} {s['bad_crc']} "
                                f"{s['bad_length']} {s['unknown_type']} {s['truncated']} "
                                f"{v['held']}"), v["name"]
    assert lines == []


# ------------------------------------------------------------------------------ mutated corpus


def _nested(rnd: random.Random) -> bytes:
    """A CALIBRATION_WRITE whose raw points hold a whole frame; outer CRC good or broken."""
    inner = py_encode(Ping(rnd.getrandbits(32)), rnd.randrange(1, 256))
    raw = bytes(rnd.randrange(0, 32 - len(inner) + 1)) + inner
    outer = bytearray(py_encode(CalibrationWrite(8, 7, raw.ljust(32, b"\0")), 9))
    if rnd.random() < 0.5:
        outer[-1] ^= 1 << rnd.randrange(8)
    return bytes(outer)


def _mutate(rnd: random.Random, data: bytearray) -> bytearray:
    kind = rnd.randrange(6)
    if kind == 0 and data:  # bit flips
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(data))
            data[i] ^= 1 << rnd.randrange(8)
    elif kind == 1 and data:  # truncation, at the end or in the middle
        i = rnd.randrange(len(data))
        j = i + rnd.randint(1, 12)
        data = data[:i] if rnd.random() < 0.5 else data[:i] + data[j:]
    elif kind == 2:  # junk, often sync-like
        junk = rnd.choice([b"\xaa", b"\xaa\x55", b"\xaa\x55\x04", rnd.randbytes(rnd.randint(1, 9))])
        i = rnd.randrange(len(data) + 1)
        data[i:i] = junk
    elif kind == 3:  # a stray LEN/TYPE pair after a sync
        i = rnd.randrange(len(data) + 1)
        data[i:i] = b"\xaa\x55" + bytes((rnd.randrange(256), rnd.randrange(256)))
    elif kind == 4 and data:  # duplicate a slice (a retransmission glued on)
        i = rnd.randrange(len(data))
        data[i:i] = data[i : i + rnd.randint(1, 20)]
    else:
        data += rnd.randbytes(rnd.randint(0, 4))
    return data


def corpus(seed: int, count: int) -> list[list[bytes]]:
    """`count` inputs, each a list of chunks, from seeded mutations of real frames."""
    rnd = random.Random(seed)
    frames = all_frames() + [bytes.fromhex(v["hex"]) for v in load_vectors()]
    out = []
    for _ in range(count):
        parts = [rnd.choice(frames) if rnd.random() < 0.85 else _nested(rnd)
                 for _ in range(rnd.randint(1, 5))]
        data = bytearray(b"".join(parts))
        for _ in range(rnd.randint(0, 4)):
            data = _mutate(rnd, data)
        n_cuts = max(0, min(len(data) - 1, rnd.randint(0, 4)))
        bounds = [0, *sorted(rnd.sample(range(1, len(data)), n_cuts)), len(data)]
        out.append([bytes(data[a:b]) for a, b in itertools.pairwise(bounds)])
    return out


def test_a_mutated_corpus_decodes_in_c_exactly_as_in_python(driver: Path) -> None:
    inputs = corpus(seed=15, count=3000)
    cmds, want, spans = [], [], []
    for chunks in inputs:
        c, w = python_stream(chunks)
        cmds += c
        spans.append(len(w))
        want += w
    got = run(driver, cmds)
    assert len(got) == len(want), "C printed a different number of frames/counter lines"
    at = 0
    for chunks, n in zip(inputs, spans, strict=True):
        assert got[at : at + n] == want[at : at + n], b"".join(chunks).hex()
        at += n
    # the corpus reaches every decision the parser makes
    decided = [line.split() for line in want if line.startswith("C ")]
    for column in range(1, 7):
        assert any(int(c[column]) for c in decided), f"no input exercised counter {column}"


_ERRORS = (("too short", 1), ("no sync", 2), ("unknown message type", 3),
           ("LEN says", 4), ("frame is", 5), ("bad CRC", 6))


def test_single_frame_decode_refuses_exactly_what_python_refuses(driver: Path) -> None:
    rnd = random.Random(16)
    frames = all_frames()
    inputs = []
    for _ in range(1500):
        data = bytearray(rnd.choice(frames))
        for _ in range(rnd.randint(0, 2)):
            data = _mutate(rnd, data)
        inputs.append(bytes(data[: MAX_FRAME + 8]))
    lines = run(driver, ["D " + d.hex() for d in inputs])
    for data in inputs:
        try:
            frame = decode_frame(data)
        except FrameError as exc:
            code = next(c for text, c in _ERRORS if text in str(exc))
            assert lines.pop(0) == f"D {code}", (data.hex(), str(exc))
            continue
        assert lines.pop(0) == "D 0", data.hex()
        assert lines.pop(0) == frame_line(frame), data.hex()
        while lines and lines[0].startswith("V "):
            lines.pop(0)
    assert lines == []


# ------------------------------------------------------------------------------ the command


def test_cli_writes_the_codec_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "fw" / "protocol"
    runner = CliRunner()
    first = runner.invoke(smp_main, ["protocol", "c-codec", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / HEADER_NAME).read_text(encoding="utf-8") == generate_c_codec()[HEADER_NAME]
    (out / SOURCE_NAME).write_text("edited", encoding="utf-8")
    again = runner.invoke(smp_main, ["protocol", "c-codec", "--out", str(out)])
    assert again.exit_code != 0 and "--force" in again.output
    assert (out / SOURCE_NAME).read_text(encoding="utf-8") == "edited"  # untouched
    forced = runner.invoke(smp_main, ["protocol", "c-codec", "--out", str(out), "--force"])
    assert forced.exit_code == 0
    assert (out / SOURCE_NAME).read_text(encoding="utf-8") == generate_c_codec()[SOURCE_NAME]


def test_cli_names_an_unwritable_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    runner = CliRunner()
    for target in (blocker, blocker / "sub"):
        result = runner.invoke(smp_main, ["protocol", "c-codec", "--out", str(target)])
        assert result.exit_code == 2, result.output
        assert str(target) in result.output and "Traceback" not in result.output
    assert blocker.read_text(encoding="utf-8") == "x"
