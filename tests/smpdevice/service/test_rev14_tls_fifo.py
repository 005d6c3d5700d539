"""Review 14 (svc): `smp serve --tls-cert FIFO --tls-key FIFO` hung for ever, and SIGTERM did
not end it (only SIGKILL did: the load ran in a thread the loop waited for). docs/service.md:
"A start that cannot succeed is refused before the pen is opened (one line, exit 2)";
`--envelope FIFO` is refused so ("is not a regular file (a device, pipe or socket)")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.smpdevice.service.conftest import WAIT_S
from tests.smpdevice.service.test_review11b_origin import self_signed

SMP = str(Path(sys.executable).with_name("smp"))


@pytest.mark.parametrize("which", ["cert", "key"])
def test_a_fifo_as_the_tls_certificate_or_key_is_refused_not_waited_on(tmp_path, which):
    cert, key = self_signed(tmp_path)
    fifo = tmp_path / f"{which}.fifo"
    os.mkfifo(fifo)
    cert, key = (str(fifo), key) if which == "cert" else (cert, str(fifo))
    proc = subprocess.Popen([SMP, "serve", "--port", "pensim://?clock=virtual", "--listen",
                             "127.0.0.1:0", "--no-socket", "--tls-cert", cert,
                             "--tls-key", key],
                            env=dict(os.environ, SMP_DATA_DIR=str(tmp_path / "data")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=WAIT_S)  # ends on the refusal: a hang guard
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # as a service manager would
        try:
            proc.wait(3)
            ended = "ended by SIGTERM"
        except subprocess.TimeoutExpired:
            ended = "SIGTERM ignored"
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"smp serve still waits on the FIFO ({ended})") from None
    assert proc.returncode == 2, out
    assert str(fifo) in out and "not a regular file" in out, out
    assert "Traceback" not in out and "Serving pen" not in out, out
