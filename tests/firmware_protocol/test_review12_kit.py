"""The firmware team's kit (review 12, REVE-1/3/4): codes by name in `smp protocol decode`, a
codec written whole or not at all, and reads of the wire that stay defined on a 16-bit-int MCU."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from firmware_protocol import encode
from firmware_protocol.c_codec import generate_c_codec
from firmware_protocol.messages import SetFootswitch
from smpdevice.cli import main

PEER_SOURCE = Path(__file__).resolve().parents[2] / "firmware_protocol" / "c" / "reflex_peer.c"


def test_decode_names_the_footswitch_mode():
    result = CliRunner().invoke(main, ["protocol", "decode", encode(SetFootswitch(2), 21).hex()])
    assert result.exit_code == 0, result.output
    assert "REQUIRED" in result.output, result.output


def _small_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))


def test_a_codec_that_cannot_be_written_whole_leaves_nothing(tmp_path):
    out = tmp_path / "protocol"
    # No byte-code written under the limit: a .pyc cut at 30,000 bytes would be left in the
    # shared cache, and every later process importing that module would fail on it.
    cut = subprocess.run([sys.executable, "-m", "smpdevice", "protocol", "c-codec", "--out",
                          str(out)], capture_output=True, text=True, preexec_fn=_small_files,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert cut.returncode == 2 and "Traceback" not in cut.stderr, cut.stderr
    assert "cannot write" in cut.stderr, cut.stderr
    assert sorted(p.name for p in out.iterdir()) == []  # nor its temporary files
    result = CliRunner().invoke(main, ["protocol", "c-codec", "--out", str(out)])
    assert result.exit_code == 0, result.output  # nothing "already there" blocks the retry


def test_force_replaces_a_link_never_writes_through_it(tmp_path):
    out, victim = tmp_path / "protocol", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("keep", encoding="utf-8")
    (out / "smp_protocol.h").symlink_to(victim)
    result = CliRunner().invoke(main, ["protocol", "c-codec", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert victim.read_text(encoding="utf-8") == "keep"
    header = out / "smp_protocol.h"
    assert not header.is_symlink() and header.read_text(encoding="utf-8").startswith("/*")
    assert header.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_an_empty_out_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["protocol", "c-codec", "--out", ""])
    assert result.exit_code == 2 and "--out is empty" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def _unsigned_shifts_only(source: str) -> list[str]:
    """Lines that shift a byte of the wire without first widening it to an unsigned or long
    type: `p[1] << 8` shifts an int, which overflows where int is 16 bits (C99 6.5.7p4)."""
    return [line.strip() for line in source.splitlines()
            if re.search(r"(?<![)\w])\s*\bp\[-?\d\]\s*<<", line)]


def test_the_codec_and_the_reflex_peer_never_shift_a_signed_int():
    assert _unsigned_shifts_only("\n".join(generate_c_codec().values())) == []
    assert _unsigned_shifts_only(PEER_SOURCE.read_text(encoding="utf-8")) == []
    assert _unsigned_shifts_only("return (uint16_t)(p[0] | (p[1] << 8));")  # the check bites


def _earlier_pair(out: Path) -> dict[str, str]:
    out.mkdir()
    pair = {"smp_protocol.h": "/* earlier header */\n", "smp_protocol.c": "/* earlier c */\n"}
    for name, text in pair.items():
        (out / name).write_text(text, encoding="utf-8")
    return pair


def test_a_directory_in_the_way_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "fw"
    pair = _earlier_pair(out)
    (out / "smp_protocol.c").unlink()
    (out / "smp_protocol.c").mkdir()
    result = CliRunner().invoke(main, ["protocol", "c-codec", "--out", str(out), "--force"])
    assert result.exit_code == 2 and "is a directory" in result.output, result.output
    assert (out / "smp_protocol.h").read_text(encoding="utf-8") == pair["smp_protocol.h"]
    assert sorted(p.name for p in out.iterdir()) == ["smp_protocol.c", "smp_protocol.h"]


def test_a_rename_that_fails_puts_the_earlier_pair_back(tmp_path, monkeypatch):
    """The second file cannot be put in place (EPERM: a shared sticky directory): the first,
    already renamed, is taken back, so header and source stay one generation."""
    out = tmp_path / "fw"
    pair = _earlier_pair(out)
    real_rename = os.rename

    def rename(src, dst):
        if str(dst).endswith("smp_protocol.c") and ".old." not in str(src):
            raise PermissionError(1, "Operation not permitted", str(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)  # the OS refusing, not the project
    result = CliRunner().invoke(main, ["protocol", "c-codec", "--out", str(out), "--force"])
    assert result.exit_code == 2 and "cannot write there" in result.output, result.output
    assert {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()} == pair
