"""`smp serve`: the one owner of a pen, and its clients.

    auth.py          roles and the token file (0600) that proves them
    schema.py        every method and notification as JSON Schema (`rpc.describe`)
    jsonschema_lite  the validator for that schema's subset
    rpc.py           JSON-RPC 2.0 framing: strict parsing, errors, rate limits
    deadman.py       the driving client's lease gates the pen's lease (dead-man end to end)
    pen_service.py   the methods; work.py sessions and calibration; records_api.py the log
    connection.py    one client: checks in order, E-stop first, outbox
    server.py        WebSocket on loopback (+ console files), Unix socket, TLS for remote
    runner.py        build and start it; ServiceHandle runs it in a thread
    client.py        asyncio client and a synchronous wrapper
    command.py       the `smp serve` command
"""
