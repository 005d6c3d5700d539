"""Review 15 (service, V6): the refusal of `session.resume` for a closed session tells the client
to run `smp run PROFILE --port PORT`: the pen's own port, which the service holds. docs/service.md
("Resuming through the service"): every refusal's "message says what to do ...; a command in
it reaches the pen through this service, at the URL the client connected to ..., never by the
service's own pen port". A real service, a simulated pen on virtual time."""

from __future__ import annotations

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import connect, data_dir, run, vsim  # noqa: F401
from tests.smpdevice.service.test_service_resume import clear_jam, faulted_session
from tests.smpdevice.service.virtual_service import held_service, virtual_sim  # noqa: F401


def test_a_closed_session_refusal_names_the_service_not_the_pen_port(service, sim):
    async def main() -> tuple[str, str]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        sid = (await faulted_session(service, sim, op, viewer))["session_id"]
        await clear_jam(service, sim)
        await op.call("session.close", session_id=sid)
        with pytest.raises(ServiceError) as refused:
            await op.call("session.resume", session_id=sid, technician="bo")
        with pytest.raises(ServiceError) as closed_again:  # session.close refuses alike
            await op.call("session.close", session_id=sid)
        await op.close()
        await viewer.close()
        return str(refused.value), str(closed_again.value)

    for message in run(main()):
        assert "is closed" in message, message
        assert "--port" not in message and "--service ws://" in message, message
