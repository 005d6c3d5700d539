"""The `smp` program's entry point: Ctrl-C gets one line and exit 130 from the first moment.

The command line's modules take a while to import; a Ctrl-C meanwhile must not print a
traceback. Nothing here imports more than the standard library before the guard is up.
"""

from __future__ import annotations

import json
import os
import sys

STARTING_LINE = ("interrupted: while starting: no pen was touched; the needle never started and "
                 "nothing was recorded.")


def main() -> None:
    try:
        if os.environ.get("SMP_LOG_LEVEL", "").lower() in ("debug", "info"):
            # Said before the slow imports, so a person (or a test) sees the program is alive.
            event = {"event": "starting", "level": "info", "logger": "smpdevice.entry",
                     "pid": os.getpid()}
            line = (json.dumps(event) if os.environ.get("SMP_LOG_FORMAT") == "json"
                    else f"[info     ] starting pid={os.getpid()}")
            print(line, file=sys.stderr, flush=True)
        from smpdevice.cli import main as cli

        cli()  # from here on, the command line answers Ctrl-C itself
    except KeyboardInterrupt:  # during the imports, or before the command line took over
        print(STARTING_LINE, file=sys.stderr, flush=True)
        raise SystemExit(130) from None
