"""`smp keys`: the installation key that signs the pass log's heads."""

from __future__ import annotations

import json

import click


@click.group()
def keys() -> None:
    """The installation key that signs the pass log's heads (Ed25519).

    \b
    Example:
      smp keys show
    """


@keys.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show(as_json: bool) -> None:
    """Print this installation's key fingerprint and public key (the key is made on first use).

    Give the fingerprint to whoever checks your records (the clinic chain, an auditor): every
    session header carries it, and `smp sessions verify` names it.

    \b
    Example:
      smp keys show
    """
    from smpdevice.records.keys import InstallationKey

    key = InstallationKey.load_or_create()
    data = {"fingerprint": key.fingerprint, "public_key": key.public.hex,
            "algorithm": "Ed25519", "key_file": str(key.path)}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"fingerprint  {data['fingerprint']}")
    click.echo(f"public key   {data['public_key']} (Ed25519)")
    click.echo(f"key file     {data['key_file']} (private: back it up, never share it)")
