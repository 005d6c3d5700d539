"""Message size limits, shared by the service and its Python client (a light module: the
client must not import the pen's modules to learn them).

- `MAX_MESSAGE_BYTES`: the largest request the service accepts; a larger one gets -32600.
- `MAX_INBOUND_BYTES`: the largest WebSocket message the service reads at all, so that a
  request between the two still gets its clear -32600 and the connection lives. Beyond it the
  WebSocket layer closes with 1009 before reading the payload: reading any size only to refuse
  it would let anyone fill the service's memory.
- `MAX_ANSWER_BYTES`: the largest message the service sends and the largest its clients
  accept (the same number on both sides). An answer that would be larger is replaced by one
  clear JSON-RPC error.
- `LIST_PAGE_MAX`: the most sessions one `sessions.list` answer holds (its schema and its code).
- `RATE_LIMITED`, `BUSY`: the JSON-RPC codes that say "not now", not "no" (a heartbeat that
  gets one beats on); `rpc` answers them, the client reads them.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 256 * 1024  # one JSON-RPC request; a profile upload fits easily
MAX_INBOUND_BYTES = 16 * MAX_MESSAGE_BYTES  # 4 MiB: over-cap requests still get -32600
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a JSONL export of ~18,000 passes (~910 B each, escaped)
LIST_PAGE_MAX = 500  # sessions in one sessions.list answer; `start` pages through the rest
RATE_LIMITED = -32005  # over the connection's rate
BUSY = -32006  # too many requests in flight on the connection
