"""The service's JSON-RPC surface against a real simulated pen: auth, roles, schema, errors."""

from __future__ import annotations

import json
import os
import stat

import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.service import rpc
from smpdevice.service.auth import Role, read_token, token_path
from smpdevice.service.client import ServiceClient, ServiceError
from smpdevice.service.pen_service import HANDLERS
from smpdevice.service.schema import MAX_MESSAGE_BYTES, METHODS, describe
from smpdevice.service.server import Listen, ServeError, ServiceServer

from .conftest import connect, run


def test_every_method_is_described_and_every_description_is_implemented(service):
    async def main() -> dict:
        client = await connect(service, Role.VIEWER)
        try:
            return await client.call("rpc.describe")
        finally:
            await client.close()

    served = run(main())
    assert set(served["methods"]) == set(METHODS) == set(HANDLERS)
    assert served == json.loads(json.dumps(describe()))
    for name, spec in served["methods"].items():
        assert spec["role"] in served["roles"], name
        assert spec["params"]["type"] == "object", name
    assert {"pen.state", "pen.fault", "session.result", "pen.driver"} <= set(
        served["notifications"])


def test_params_are_validated_from_the_description(service):
    """Every method with required params refuses {} naming the missing parameter."""
    async def main() -> list[tuple[str, dict]]:
        client = await connect(service, Role.TECHNICIAN)
        errors = []
        try:
            for name, spec in METHODS.items():
                required = spec.params.get("required") or []
                if not required or name == "rpc.hello":
                    continue
                with pytest.raises(ServiceError) as info:
                    await client.call(name)
                errors.append((name, {"code": info.value.code, "data": info.value.data}))
        finally:
            await client.close()
        return errors

    errors = run(main())
    assert errors, "some methods have required params"
    for name, error in errors:
        assert error["code"] == -32602, name
        assert error["data"]["param"] in METHODS[name].params["required"], name


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                                 st.floats(allow_nan=False, allow_infinity=False)),
                       max_size=4))
def test_any_params_either_fit_the_schema_or_are_refused_by_name(params):
    """The validator alone: pen.set_setpoints with arbitrary params (no pen needed)."""
    request = rpc.Request("pen.set_setpoints", params, 1, True)
    try:
        rpc.check_params(request)
    except rpc.RpcError as exc:
        assert exc.code == rpc.INVALID_PARAMS
        assert exc.data["param"]
        return
    assert set(params) == {"depth_mm", "speed_hz", "duty_pct", "period_ms"}
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in params.values())


@pytest.mark.parametrize("raw, code, words", [
    ("{not json", rpc.PARSE_ERROR, "not valid JSON"),
    ('{"jsonrpc":"2.0","id":1,"method":"rpc.ping","params":{"x":NaN}}', rpc.PARSE_ERROR,
     "NaN"),
    ('{"jsonrpc":"2.0","id":1,"method":"pen.set_zone","params":{"zone":1e999}}',
     rpc.PARSE_ERROR, "finite"),
    ("[" * 100_000 + "]" * 100_000, rpc.PARSE_ERROR, "nests too deeply"),
    ('[{"jsonrpc":"2.0","id":1,"method":"rpc.ping"}]', rpc.INVALID_REQUEST, "batches"),
    ('{"jsonrpc":"1.0","id":1,"method":"rpc.ping"}', rpc.INVALID_REQUEST, "jsonrpc"),
    ('{"jsonrpc":"2.0","id":1,"method":"rpc.ping","params":[1]}', rpc.INVALID_PARAMS,
     "named parameters"),
    ('{"jsonrpc":"2.0","id":true,"method":"rpc.ping"}', rpc.INVALID_REQUEST, "id must"),
    ("x" * (MAX_MESSAGE_BYTES + 1), rpc.INVALID_REQUEST, "over the cap"),
])
def test_malformed_messages_get_clear_errors(raw, code, words):
    with pytest.raises(rpc.RpcError) as info:
        request = rpc.parse(raw)
        rpc.check_params(request)
    assert info.value.code == code
    assert words in info.value.message


def test_authentication_and_roles(service):
    async def main() -> None:
        url = service.url
        with pytest.raises(ServiceError, match="unknown token"):
            await ServiceClient.connect(url, token="x" * 43)
        viewer = await connect(service, Role.VIEWER)
        operator = await connect(service, Role.OPERATOR)
        try:
            with pytest.raises(ServiceError, match="cannot ask for technician"):
                await ServiceClient.connect(url, token=service.token(Role.OPERATOR),
                                            role=Role.TECHNICIAN)
            with pytest.raises(ServiceError) as info:
                await viewer.call("pen.drive", lease_ms=1000)
            assert info.value.code == rpc.FORBIDDEN and "operator role" in str(info.value)
            with pytest.raises(ServiceError) as info:
                await operator.call("pen.clear_faults", reason="cause removed")
            assert info.value.code == rpc.FORBIDDEN
            with pytest.raises(ServiceError) as info:  # not driving
                await operator.call("pen.set_zone", zone="crown")
            assert info.value.code == rpc.NOT_DRIVING
            state = await viewer.call("pen.state")
            assert state["state"] == "idle"
            ident = await viewer.call("pen.identity")
            assert ident["simulated"] is True and "crown" in ident["zones"]
        finally:
            await viewer.close()
            await operator.close()

    run(main())


def test_unauthenticated_connections_get_nothing_but_an_error(service):
    async def main() -> list[dict]:
        async with websockets.connect(service.url) as ws:
            answers = []
            for method in ("pen.state", "pen.estop", "rpc.describe"):
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}))
                answers.append(json.loads(await ws.recv()))
            return answers

    for answer in run(main()):
        assert answer["error"]["code"] == rpc.NOT_AUTHENTICATED
    assert service.pen.state.value == "idle"  # an unauthenticated E-stop did nothing


def test_a_browser_on_another_origin_is_refused(service):
    async def main() -> None:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(service.url, origin="http://evil.example"):
                pass
        assert info.value.response.status_code == 403
        own = service.url.replace("ws://", "http://").removesuffix("/rpc")
        async with websockets.connect(service.url, origin=own):
            pass

    run(main())


def test_files_and_socket_are_private(service, data_dir):
    assert stat.S_IMODE(os.stat(token_path(data_dir)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(service.socket_path).st_mode) == 0o600
    assert read_token(data_dir, "viewer") == service.token(Role.VIEWER)
    assert len({service.token(r) for r in Role}) == 3

    async def main() -> str:
        client = await connect(service, Role.VIEWER, unix=True)
        try:
            return (await client.call("pen.state"))["state"]
        finally:
            await client.close()

    assert run(main()) == "idle"


def test_remote_binding_needs_allow_remote_and_tls(service):
    inner = service.server.service
    with pytest.raises(ServeError, match="loopback only"):
        ServiceServer(inner, listen=Listen.parse("0.0.0.0:8765"), socket_path=None)
    with pytest.raises(ServeError, match="needs TLS"):
        ServiceServer(inner, listen=Listen.parse("0.0.0.0:8765"), socket_path=None,
                      allow_remote=True)
    with pytest.raises(ServeError, match="HOST:PORT"):
        Listen.parse("8765")
