"""Review 14 (proto 11): `smp protocol c-codec` replaced a dangling link without --force.

What was wrong: docs/protocol.md section 14 says the command "refuses to overwrite files
already there unless --force", but it looked for them with `Path.exists()`, which is False for
a symlink whose target is missing (a link to a shared header not mounted yet): such a link
named smp_protocol.h was replaced by a generated file. Now `os.path.lexists` finds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SMP = Path(sys.executable).with_name("smp")


def _codec(out: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SMP_DATA_DIR=str(tmp_path / "data"), TMPDIR=str(tmp_path))
    return subprocess.run([str(SMP), "protocol", "c-codec", "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_dangling_link_of_that_name_is_not_replaced_without_force(tmp_path):
    out = tmp_path / "protocol"
    out.mkdir()
    link = out / "smp_protocol.h"
    link.symlink_to(tmp_path / "shared" / "smp_protocol.h")  # target not there
    done = _codec(out, tmp_path)
    assert link.is_symlink(), "the link was replaced by a generated file without --force"
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "smp_protocol.h already there" in done.stderr
    assert not (out / "smp_protocol.c").exists()  # nothing written: the pair stays whole
    forced = _codec(out, tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not link.is_symlink() and link.read_text().startswith("/*")
