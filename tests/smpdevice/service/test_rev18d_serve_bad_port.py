"""Review 18 (cli, left): `smp serve --port ""` was refused only after it had written
serve.lock and service.tokens.json into the data directory. The pen's arguments (and the
station's envelope) are now checked before anything is written: a start that cannot succeed
changes nothing (docs/service.md, "refused before the pen is opened ... Nothing else is
opened")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smpdevice.errors import SmpError
from smpdevice.service.runner import ServiceOptions, build

SMP = str(Path(sys.executable).with_name("smp"))


@pytest.mark.parametrize("port", ["", " ", "pensim://\x01"])
def test_a_pen_port_refused_writes_nothing_in_the_data_directory(tmp_path, port):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(SmpError, match="port"):
        build(ServiceOptions(port=port, listen="127.0.0.1:0", data_dir=str(data)))
    assert sorted(p.name for p in data.iterdir()) == []


def test_smp_serve_with_an_empty_port_exits_2_and_writes_nothing(tmp_path):
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path)}
    done = subprocess.run([SMP, "serve", "--port", "", "--listen", "127.0.0.1:0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "port" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
