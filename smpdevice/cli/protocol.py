"""`smp protocol`: read frames and the golden vectors (placeholder filled by the protocol work)."""

from __future__ import annotations

import click


@click.group()
def protocol() -> None:
    """Inspect the wire protocol: decode frames, print the golden vectors."""
