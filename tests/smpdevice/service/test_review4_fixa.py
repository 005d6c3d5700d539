"""Review 4 (FIXA), against a real simulated pen behind a real service:

- a service URL the service rejects at the handshake (no path, wrong path, port 99999, broken
  [IPv6]) is one typed line; `smp estop` then says "E-stop NOT sent" and exits 6 (finding 1);
- a JSON integer no float holds is one JSON-RPC error and the connection lives (finding 2);
- a reason, a connection name or a technician with control characters or bidi overrides is
  refused with -32602 before anything runs (finding 10);
- the central store's password never appears in an error, wherever the URL carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

import pytest
import websockets
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smpdevice import checks
from smpdevice.cli import main
from smpdevice.outcomes import ExitCode
from smpdevice.records import dsn
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceClient, ServiceError
from smpdevice.service.jsonschema_lite import SchemaViolation, validate
from smpdevice.service.rpc import RpcError, check_params, parse
from smpdevice.service.schema import LINE_PATTERN
from smpdevice.sessions.screening import QUESTIONS
from tests.smpdevice.service.conftest import connect, data_dir, run, service, sim  # noqa: F401

BIG = "1" + "0" * 400  # valid JSON, far beyond any float


def bad_urls(service) -> dict[str, str]:  # noqa: F811
    base = service.url.rsplit("/", 1)[0]  # ws://127.0.0.1:PORT
    return {"no-path": base, "wrong-path": base + "/nope",
            "bad-port": "ws://127.0.0.1:99999/rpc", "broken-ipv6": "ws://[::1/rpc"}


# ------------------------------------------------------------- finding 1: the client


@pytest.mark.parametrize("mangle", ["no-path", "wrong-path", "bad-port", "broken-ipv6"])
def test_estop_through_a_wrong_service_url_says_not_sent_and_exits_6(service, mangle):  # noqa: F811
    result = CliRunner().invoke(main, ["estop", "--service", bad_urls(service)[mangle]])
    assert isinstance(result.exception, SystemExit), result.exception  # old: InvalidStatus...
    assert result.exit_code == ExitCode.LINK_LOST
    assert "E-stop NOT sent" in result.output and "pull its power" in result.output


def test_estop_without_a_readable_token_file_says_not_sent(service, data_dir):  # noqa: F811
    (data_dir / "service.tokens.json").unlink()
    result = CliRunner().invoke(main, ["estop", "--service", service.url])
    assert result.exit_code == ExitCode.LINK_LOST  # old: 2, without "NOT sent"
    assert "E-stop NOT sent" in result.output and "token file" in result.output


@pytest.mark.parametrize("args", [["info"], ["clear", "--yes", "--reason", "cartridge ok"],
                                  ["monitor", "--once"], ["calibrate", "--auto"]])
def test_every_service_command_with_a_wrong_path_is_one_line_exit_2(service, args):  # noqa: F811
    url = bad_urls(service)["no-path"]
    result = CliRunner().invoke(main, [*args, "--service", url])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == ExitCode.USER_ERROR
    assert "cannot reach the pen service" in result.output and "/rpc" in result.output


def test_the_client_names_the_right_path_when_the_server_answers_http(service):  # noqa: F811
    async def main_() -> None:
        with pytest.raises(ServiceError, match=r"answered HTTP 200, not a WebSocket.*ends in /rpc"):
            await ServiceClient.connect(bad_urls(service)["no-path"],
                                        token=service.token(Role.VIEWER), role=Role.VIEWER)
    run(main_())


# ----------------------------------------------------------- finding 2: huge integers


def test_a_huge_integer_is_one_error_and_the_connection_lives_on(service):  # noqa: F811
    async def go() -> None:
        async with websockets.connect(service.url) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.hello",
                                      "params": {"token": service.token(Role.OPERATOR)}}))
            assert "result" in json.loads(await ws.recv())
            for i, number in enumerate((BIG, "-" + BIG, str(2**63), str(2**1030)), 1):
                await ws.send(f'{{"jsonrpc":"2.0","id":{i},"method":"pen.set_setpoints",'
                              f'"params":{{"depth_mm":0.5,"speed_hz":{number},"duty_pct":40,'
                              '"period_ms":100}}')
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert reply["error"]["code"] == -32700, reply  # old: connection closed 1011
            await ws.send('{"jsonrpc":"2.0","id":9,"method":"rpc.ping"}')
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["result"]["ok"] is True
    run(go())


def test_the_number_type_check_holds_for_an_integer_beyond_any_float():
    with pytest.raises(SchemaViolation, match="must be number"):
        validate({"type": "number"}, 10**400)  # old: OverflowError


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.integers(min_value=2**1024, max_value=10**400).map(lambda n: n * (-1) ** (n % 2)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3), max_leaves=8)


CALLS = {"pen.set_setpoints": ("depth_mm", "speed_hz", "duty_pct", "period_ms"),
         "calibration.move": ("actuator_mm",), "pen.drive": ("lease_ms",),
         "telemetry.subscribe": ("rate_hz",), "pen.clear_faults": ("reason",),
         "calibration.spin": ("speed_hz", "duration_s")}


@given(st.sampled_from(sorted(CALLS)).flatmap(
    lambda m: st.tuples(st.just(m), st.fixed_dictionaries({k: json_values for k in CALLS[m]}))))
@settings(max_examples=400, deadline=None)
def test_any_params_are_answered_by_an_rpc_error_or_accepted(call):
    """Whatever a client sends, the checks answer with RpcError or let it through: never
    another exception (which would close a driving client's connection)."""
    method, params = call
    raw = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    with contextlib.suppress(RpcError):
        check_params(parse(raw))


# ------------------------------------------------ finding 10: one-line names and reasons


@pytest.mark.parametrize("reason", ["cartridge ok\x1b[2J", "cartridge ok\nwarning: forged",
                                    "cartridge\u202e ok", "cartridge\tok", "   ", "ok",
                                    "\U000e0020\U000e0021\U000e0022",
                                    "o\u200bk\U0001d173\u0301"])
def test_a_clear_reason_with_control_characters_is_refused(service, reason):  # noqa: F811
    async def go() -> None:
        tech = await connect(service, Role.TECHNICIAN)
        try:
            await tech.estop()
            with pytest.raises(ServiceError) as info:
                await tech.call("pen.clear_faults", reason=reason)  # old: cleared, logged raw
            assert info.value.code == -32602 and info.value.data["param"] == "reason"
            assert (await tech.call("pen.state"))["state"] == "estop"  # nothing ran
            await tech.call("pen.clear_faults", reason="cartridge reseated, María")  # a name ok
            assert (await tech.call("pen.state"))["state"] == "idle"
        finally:
            await tech.close()
    run(go())


@pytest.mark.parametrize("name", ["smp\x1b[2J", "ana\nb", "ana\u202eb"])
def test_a_connection_name_with_control_characters_is_refused(service, name):  # noqa: F811
    async def go() -> None:
        with pytest.raises(ServiceError) as info:
            await connect(service, Role.TECHNICIAN, name=name)
        assert info.value.code == -32602 and info.value.data["param"] == "client"
    run(go())


def test_a_technician_with_control_characters_is_refused_by_session_run(service):  # noqa: F811
    async def go() -> None:
        op = await connect(service, Role.OPERATOR)
        try:
            await op.drive(lease_ms=1000)
            with pytest.raises(ServiceError) as info:
                await op.call("session.run", profile="x", technician="ana\tb",
                              screening=dict.fromkeys(QUESTIONS, False))
            assert info.value.code == -32602 and info.value.data["param"] == "technician"
        finally:
            await op.close()
    run(go())


@given(st.text(max_size=20))
@settings(max_examples=500, deadline=None)
def test_the_published_pattern_is_the_rule_of_checks_text(value):
    """The schema's pattern (what rpc.describe publishes) and smpdevice.checks.text (what the
    station's names pass) accept exactly the same one-line texts."""
    try:
        checks.text("name", value, max_len=10_000)
        accepted = True
    except checks.InvalidArgument:
        accepted = False
    assert bool(re.fullmatch(LINE_PATTERN, value)) == accepted


# ------------------------------------------------------------ the central store's URL


@pytest.mark.parametrize("url", ["postgresql://127.0.0.1:1/x?password=S3cret",
                                 "postgresql://u:S3cret@127.0.0.1:1/x",
                                 "postgresql://u:S3@cret@127.0.0.1:1/x",
                                 "postgresql://127.0.0.1:1/x?sslmode=disable&PASSWORD=S3cret",
                                 "host=127.0.0.1 port=1 password=S3cret"])
def test_the_central_store_password_never_appears_in_an_error(url):
    from smpdevice.records.central import CentralStoreError
    from smpdevice.records.central import connect as central_connect

    with pytest.raises(CentralStoreError) as info:
        central_connect(url)
    message = str(info.value)
    assert "S3cret" not in message and "cret" not in message, message  # old: ?password shown
    assert "\n" not in message
    assert info.value.__cause__ is None  # the driver's text, which may quote it, is not kept


@given(st.text(alphabet=st.characters(blacklist_characters="@/?&#=:'\" *",
                                      blacklist_categories=("Cs", "Z", "Cc")),
               min_size=3, max_size=16))
@settings(max_examples=200, deadline=None)
def test_safe_and_scrub_hide_any_password(secret):
    for url in (f"postgresql://u:{secret}@h/db", f"postgresql://h/db?password={secret}",
                f"host=h password={secret} dbname=x"):
        shown = dsn.safe(url)
        assume(secret not in shown.replace(dsn.MASK, "\0"))  # not a part of the rest
        assert secret not in shown and dsn.MASK in shown
        assert secret not in dsn.scrub(f"bad value {secret}!", url)
