"""pen.clear_faults's reason must say why clearing is safe: at least 3 characters a reader sees
(checks.visible_count: grapheme clusters with a visible code point), none unknown to this
Python's Unicode tables. Before, it counted code points: one emoji or one Hangul syllable
written as jamo cleared an E-stop, and so did three code points these tables do not know
(Unicode 15 marks under Python 3.11's Unicode 14: chosen at run time, unicode_reference).
`smp clear --service URL --reason TEXT` applies the same count before it calls. Real service,
real sim."""
from __future__ import annotations

import pytest

from smpdevice.outcomes import ExitCode
from smpdevice.service import cli_client
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import connect, run
from tests.smpdevice.unicode_reference import unknown_in_blocks

FEWER_THAN_3_SEEN = [
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # one glyph: family (man, woman, girl)
    "\u1100\u1161\u11a8",  # one glyph: the Hangul syllable GAG written as three jamo
    "\U0001f1e9\U0001f1ea\u2757",  # two glyphs: a flag and an exclamation mark
    "\U0001f44d\U0001f3fd\U0001f44d\U0001f3fd",  # two thumbs up with a skin tone
    "".join(unknown_in_blocks()[:3]),  # unknown to these tables (Unicode 15 marks on 3.11)
]


def _latch(service) -> None:
    async def go() -> None:
        tech = await connect(service, Role.TECHNICIAN)
        try:
            await tech.estop()
        finally:
            await tech.close()
    run(go())


def _state(service) -> str:
    async def go() -> str:
        viewer = await connect(service, Role.VIEWER)
        try:
            return str((await viewer.call("pen.state"))["state"])
        finally:
            await viewer.close()
    return str(run(go()))


@pytest.mark.parametrize("reason", FEWER_THAN_3_SEEN, ids=["family-emoji", "hangul-jamo",
                                                          "flag-and-bang", "two-thumbs",
                                                          "unknown-here"])
def test_a_reason_of_fewer_than_three_seen_characters_clears_nothing(service, reason):
    _latch(service)

    async def go() -> None:
        tech = await connect(service, Role.TECHNICIAN)
        try:
            with pytest.raises(ServiceError, match="reason"):
                await tech.call("pen.clear_faults", reason=reason)
            assert (await tech.call("pen.state"))["state"] == "estop"
            await tech.call("pen.clear_faults", reason="cartridge reseated \U0001f44d")
            assert (await tech.call("pen.state"))["state"] != "estop"  # a real reason clears
        finally:
            await tech.close()
    run(go())


@pytest.mark.parametrize("reason", ["\u200b\u200b\u200b", FEWER_THAN_3_SEEN[0]],
                         ids=["zero-width", "one-emoji"])
def test_the_cli_counts_a_reason_as_the_service_does(service, reason, capsys):
    """It checked len(reason.strip()) >= 3 and sent these, to be refused with -32602."""
    _latch(service)
    with pytest.raises(SystemExit) as stopped:
        cli_client.clear(service.url, True, reason)
    assert stopped.value.code == ExitCode.CHECK_FAILED
    assert "Nothing cleared: a reason is required (at least 3 visible" in capsys.readouterr().err
    assert _state(service) == "estop"
