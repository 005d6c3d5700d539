"""`smp protocol decode` and `smp protocol vectors`, through click's CliRunner."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_protocol.vectors import load_vectors
from smpdevice.cli import main

VECTORS = {v["name"]: v for v in load_vectors()}
NACK = VECTORS["nack_out_of_limits_depth"]["hex"]
SETPOINTS = VECTORS["set_setpoints"]["hex"]


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["protocol", *args])


def test_decode_shows_type_seq_fields_with_units_and_names(run) -> None:
    r = run("decode", SETPOINTS, NACK)
    assert r.exit_code == 0, r.output
    assert "SET_SETPOINTS (0x03)  seq 3" in r.output
    assert "depth_um       1.2 mm (1200 µm)" in r.output
    assert "duty_permille  40 % (400 x 0.1 %)" in r.output
    assert "NACK (0x42)  seq 5" in r.output
    assert "reason      2 (OUT_OF_LIMITS)" in r.output
    assert "detail      1 (DEPTH)" in r.output


@pytest.mark.parametrize(
    "text",
    [
        "aa 55 03 05 42 03 02 01 24 b6 3a a3",
        "aa:55:03:05:42:03:02:01:24:b6:3a:a3",
        "0xaa 0x55 0x03 0x05 0x42 0x03 0x02 0x01 0x24 0xb6 0x3a 0xa3",
        "AA55030542030201-24B63AA3",
    ],
)
def test_decode_accepts_pasted_hex(run, text: str) -> None:
    r = run("decode", text)
    assert r.exit_code == 0, r.output
    assert "NACK (0x42)  seq 5" in r.output


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (NACK[:-8] + "00000000", "bad CRC: frame says 0x00000000, computed 0xa33ab624"),
        ("aa5503", "frame too short: 3 bytes"),
        ("aa55000130aaaaaaaa", "unknown message type 0x30"),
        ("aa5", "odd number of hex digits (3)"),
        ("aa55zz", "'z' is not a hex digit"),
    ],
)
def test_decode_reports_the_precise_error_and_exits_1(run, text: str, error: str) -> None:
    r = run("decode", text)
    assert r.exit_code == 1
    assert error in r.output
    assert "Traceback" not in r.output


def test_decode_good_and_bad_frames_together(run) -> None:
    r = run("decode", SETPOINTS, "aa5503", NACK)
    assert r.exit_code == 1
    assert "SET_SETPOINTS" in r.output and "NACK" in r.output and "too short" in r.output


def test_decode_json(run) -> None:
    r = run("decode", "--json", SETPOINTS, "aa5503")
    assert r.exit_code == 1
    out = json.loads(r.output)
    assert out[0]["type"] == "SET_SETPOINTS"
    assert out[0]["seq"] == 3
    assert out[0]["fields"] == VECTORS["set_setpoints"]["fields"]
    assert "too short" in out[1]["error"]


def test_decode_json_of_every_vector_matches_its_fields(run) -> None:
    r = run("decode", "--json", *(v["hex"] for v in VECTORS.values()))
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert [g["fields"] for g in got] == [v["fields"] for v in VECTORS.values()]
    assert [g["type"] for g in got] == [v["type"] for v in VECTORS.values()]


def test_decode_needs_an_argument(run) -> None:
    r = run("decode")
    assert r.exit_code == 2
    assert "Missing argument 'HEX...'" in r.output


def test_decode_help_teaches_with_an_example(run) -> None:
    r = run("decode", "--help")
    assert r.exit_code == 0
    assert "smp protocol decode aa55" in r.output
    assert "--json" in r.output


def test_vectors_prints_an_existing_path(run) -> None:
    r = run("vectors")
    assert r.exit_code == 0
    path = Path(r.output.strip())
    assert path.name == "vectors.json" and path.is_file()


def test_vectors_show_prints_the_file(run) -> None:
    r = run("vectors", "--show")
    assert r.exit_code == 0
    assert json.loads(r.output) == load_vectors()


def test_vectors_help_has_an_example(run) -> None:
    r = run("vectors", "--help")
    assert "smp protocol vectors --show" in r.output


def test_protocol_group_lists_both_commands(run) -> None:
    r = run("--help")
    assert "decode" in r.output and "vectors" in r.output


def _help_examples(text: str) -> list[list[str]]:
    """The `smp protocol decode ...` example lines of a help text, as argument lists."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("smp protocol decode "):
            out.append(shlex.split(line)[2:])
    return out


@pytest.mark.parametrize("args", [[], ["decode"]], ids=["group", "decode"])
def test_help_names_the_real_crc_and_its_examples_decode(run, args: list[str]) -> None:
    r = run(*args, "--help")
    assert r.exit_code == 0, r.output
    assert "CRC16" not in r.output and "CRC-16" not in r.output
    examples = _help_examples(r.output)
    assert examples, r.output
    for example in examples:
        got = run(*example)
        assert got.exit_code == 0, (example, got.output)


def test_group_help_says_crc32(run) -> None:
    assert "CRC-32" in run("--help").output


@pytest.mark.parametrize("text", [
    "aa55030542030201" + "24b63aa3" + "0x",  # a trailing 0x
    "aa550x030542030201" + "24b63aa3",  # a 0x inside a group
])
def test_decode_takes_0x_only_as_a_prefix(run, text: str) -> None:
    """Review 17: "0x" was dropped wherever it stood, so a valid frame with a stray 0x inside
    or after it decoded as if it were not there."""
    r = run("decode", text)
    assert r.exit_code != 0, r.output
    assert "'x' is not a hex digit" in r.output, r.output
