"""Review 20: `messages._hint` against `typing.get_type_hints`, beyond the catalogue's own
classes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated as Wired  # noqa: F401  (a name of this module only)
from typing import get_type_hints

from firmware_protocol import messages
from firmware_protocol.codes import MsgType
from firmware_protocol.messages import Message, Wire  # noqa: F401  (the annotations name it)


def test_every_catalogue_hint_is_get_type_hints_in_a_fresh_process_importing_a_leaf_first():
    """Import order: the catalogue imported through another module first, then checked."""
    code = ("import firmware_protocol.codes, firmware_protocol.vectors\n"
            "from dataclasses import fields\nfrom typing import get_type_hints\n"
            "from firmware_protocol import messages\n"
            "n=0\n"
            "for c in messages.REGISTRY.values():\n"
            "    h=get_type_hints(c, include_extras=True)\n"
            "    for f in fields(c):\n"
            "        assert messages._hint(f.type, c.__module__)==h[f.name],(c,f.name); n+=1\n"
            "print(n)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(Path(__file__).parents[2]),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 40


def test_a_message_declared_in_another_module_gets_its_own_modules_names(monkeypatch):
    """`message` is the catalogue's public decorator; a message declared elsewhere with string
    annotations (PEP 563) naming its own module's imports: get_type_hints resolves them in
    that module, `_hint` only in messages.py (NameError here)."""
    registry = {t: c for t, c in messages.REGISTRY.items() if t != MsgType.SET_SETPOINTS}
    monkeypatch.setattr(messages, "REGISTRY", registry)
    cls = type("SetSetpoints", (Message,), {
        "__module__": __name__,
        "__annotations__": {"depth_um": 'Wired[int, Wire("h")]',
                            "speed_centihz": 'Wired[int, Wire("H")]',
                            "duty_permille": 'Wired[int, Wire("H")]',
                            "period_us": 'Wired[int, Wire("I")]'}})
    assert get_type_hints(cls, include_extras=True)  # resolvable where it was declared
    made = messages.message(MsgType.SET_SETPOINTS)(cls)
    assert [f.name for f in fields(made)] == ["depth_um", "speed_centihz", "duty_permille",
                                               "period_us"]
