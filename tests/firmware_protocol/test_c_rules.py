"""The generated C state rules (smp_rule_*) say what firmware_protocol.rules says, for every
type byte and every state byte, so a firmware built on them follows the spec's table, its
duplicate window and the E-stop's place in a read (docs/protocol.md sections 5, 7, 9).
Skipped only when gcc is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from firmware_protocol import rules
from firmware_protocol.c_codec import SOURCE_NAME, generate_c_codec
from firmware_protocol.codes import FirmwareState, MsgType

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C codec "
                                "cannot be compiled here (apt-get install gcc)")

# One line per type byte: the membership rules, the accepted states, then per state byte the
# transition (-1: none); and one line per state byte with its refusal.
DUMP_C = r"""
#include "smp_protocol.h"
#include <stdio.h>
int main(void)
{
    unsigned t, s;
    for (t = 0; t < 256u; t++) {
        size_t n = 0, i;
        const uint8_t *c = smp_rule_extra_checks((uint8_t)t, &n);
        printf("T %u %u %d %d %d %d :", t, (unsigned)smp_rule_accepted_states((uint8_t)t),
               smp_rule_deduplicated((uint8_t)t), smp_rule_acts_with_seq_0((uint8_t)t),
               smp_rule_clears_window((uint8_t)t), smp_rule_superseded_by_estop((uint8_t)t));
        for (s = 0; s < 8u; s++) printf(" %d", smp_rule_transition((uint8_t)t, (uint8_t)s));
        printf(" :");
        for (i = 0; i < n; i++) printf(" %u", (unsigned)c[i]);
        printf("\n");
    }
    for (s = 0; s < 8u; s++) printf("R %u %u\n", s, (unsigned)smp_rule_refusal((uint8_t)s));
    return 0;
}
"""


def _python_lines() -> list[str]:
    out = []
    for t in range(256):
        mt = MsgType(t) if t in MsgType._value2member_map_ else None
        accepted = sum(1 << int(s) for s in rules.ACCEPTED_IN.get(mt, ())) if mt else 0

        def has(items: frozenset, mt: MsgType | None = mt) -> int:
            return int(mt is not None and mt in items)

        moves = rules.TRANSITIONS.get(mt, {}) if mt else {}
        after = [int(moves[FirmwareState(s)]) if s in FirmwareState._value2member_map_
                 and FirmwareState(s) in moves else -1 for s in range(8)]
        checks = [int(r) for r in rules.EXTRA_CHECKS.get(mt, ())] if mt else []
        out.append(f"T {t} {accepted} {has(rules.DEDUPLICATED)} {has(rules.ACTS_WITH_SEQ_0)} "
                   f"{has(rules.CLEARS_WINDOW)} {has(rules.SUPERSEDED_BY_ESTOP)} :"
                   + "".join(f" {a}" for a in after) + " :" + "".join(f" {c}" for c in checks))
    for s in range(8):
        state = FirmwareState(s) if s in FirmwareState._value2member_map_ else FirmwareState.IDLE
        out.append(f"R {s} {int(rules.refusal(state))}")
    return out


def test_the_c_rules_are_the_python_rules(tmp_path: Path) -> None:
    for name, text in generate_c_codec().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "dump.c").write_text(DUMP_C, encoding="utf-8")
    exe = tmp_path / "dump"
    subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1",
                    "-I", str(tmp_path), str(tmp_path / SOURCE_NAME), str(tmp_path / "dump.c"),
                    "-o", str(exe)], check=True, capture_output=True, timeout=120)
    got = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                         check=True).stdout.splitlines()
    want = _python_lines()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w


def test_only_clear_faults_is_superseded_by_an_estop() -> None:
    """docs/protocol.md section 9 names CLEAR_FAULTS: the one way out of ESTOP."""
    assert {MsgType.CLEAR_FAULTS} == rules.SUPERSEDED_BY_ESTOP
    assert rules.SUPERSEDED_BY_ESTOP <= rules.DEDUPLICATED  # its NACK enters the window
