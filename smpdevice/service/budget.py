"""What a connection's messages may cost the service's one event loop before they are read,
and when a client is flooding (docs/service.md). `client` is a connection.Client, `service`
its PenService."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from smpdevice.service.limits import MAX_MESSAGE_BYTES, RATE_LIMITED
from smpdevice.service.rpc import Request, RpcError, TokenBucket, check_size, head_id, scan_estop

if TYPE_CHECKING:
    from smpdevice.service.connection import Client
    from smpdevice.service.pen_service import PenService

# Reading a message costs the one event loop about its length (~35 ns a character for JSON
# integers: 9 ms for 256 KiB), before any rate limit could look at what it asks; four viewers
# sending 250 KiB back to back held every other client's E-stop for ~110 ms each. So a message
# over SMALL_MESSAGE_CHARS is charged its length first, and one over the budget is read no
# further than its size and its E-stop (the lenient scan, ~1 ms for 256 KiB).
SMALL_MESSAGE_CHARS = 1024  # never charged: an E-stop is ~60, a heartbeat ~70
MESSAGE_CHARS_PER_S = 64 * 1024  # a 256 KiB profile every 4 s, sustained
MESSAGE_CHARS_BURST = 2 * MAX_MESSAGE_BYTES  # two requests at the cap at once
# Before rpc.hello only a hello is read: one is < 3 KiB (a 128-character token, a 200-character
# name even \u-escaped); a bigger message is refused unread as a failed hello. In UTF-8 bytes
# as on the wire (as the 256 KiB cap), not characters: see `wire_bytes_over`.
BEFORE_HELLO_MAX_BYTES = 8 * 1024


def wire_bytes_over(raw: str | bytes, cap: int) -> bool:
    """Whether the message is over `cap` UTF-8 bytes. A text frame arrives as `str` of 1-4
    bytes a character: only one between cap/4 and cap characters needs encoding to tell."""
    if isinstance(raw, bytes) or len(raw) > cap or len(raw) <= cap // 4:
        return len(raw) > cap
    return len(raw.encode("utf-8", "surrogatepass")) > cap
# Messages refused for a rate (requests or characters) without the connection pausing long
# enough for its buckets to refill: it keeps flooding, and is disconnected.
FLOOD_STRIKES = 16
FLUSH_S = 0.5  # before a flooding client is closed, for its queued answers to leave


async def flush(client: Client) -> None:
    """Let the writer send what is queued (an E-stop's answer), at most FLUSH_S."""
    end_s = time.monotonic() + FLUSH_S
    while not client.outbox.empty() and time.monotonic() < end_s:
        await asyncio.sleep(0.005)


def budget(service: PenService, client: Client) -> TokenBucket:
    """The character budget a message is charged to: the connection's own before rpc.hello,
    then its role's, shared by every connection of that role: a client that reconnects gets
    no fresh burst (8 viewers reconnecting after each 2 x 250 KiB held another E-stop up to
    186 ms; review 14b)."""
    if client.role is None:
        return client.chars
    shared = service.char_budgets.get(client.role)
    if shared is None:
        shared = service.char_budgets[client.role] = TokenBucket(MESSAGE_CHARS_PER_S,
                                                                 MESSAGE_CHARS_BURST)
    return shared


def read_over_rate(client: Client, raw: str | bytes) -> Request:
    """A message over its character budget: refused unread (-32005, with the id its head
    shows), unless it names an E-stop (told by the lenient scan alone)."""
    check_size(raw)
    estop = scan_estop(raw) if client.role is not None else None
    if estop is None:
        raise RpcError(RATE_LIMITED, f"rate limited: messages over {SMALL_MESSAGE_CHARS} "
                                     f"characters may total {MESSAGE_CHARS_PER_S // 1024} KiB/s "
                                     f"(bursts of {MESSAGE_CHARS_BURST // 1024} KiB) for the "
                                     "clients of this role; this one was not read; slow down",
                       {"message_chars_per_s": MESSAGE_CHARS_PER_S}, ident=head_id(raw))
    return estop


def strike(client: Client) -> None:
    """A message refused for a rate: a client that goes on without pausing is flooding (read
    no more; `serve_client` closes it once its answers are out: an E-stop's among them)."""
    client.strikes += 1
    if client.strikes >= FLOOD_STRIKES:
        client.flooding = f"{FLOOD_STRIKES} messages over its rate without a pause: flooding"


