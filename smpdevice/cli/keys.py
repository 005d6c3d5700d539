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
    """Print this installation's key fingerprint and public key.

    Give the fingerprint to whoever checks your records (the clinic chain, an auditor): every
    session header carries it, and `smp sessions verify` names it. The key is made by the
    first session this station records; `show` never makes one (on an auditor's machine, a
    key made here would be trusted by its `smp sessions verify`): without a key it says so
    (exit 0; with --json, nulls).

    \b
    Example:
      smp keys show
    """
    from smpdevice.records.keys import KEY_FILE_NAME, key_dir, load_public

    path = key_dir() / KEY_FILE_NAME
    public = load_public()
    data = {"fingerprint": public.fingerprint if public else None,
            "public_key": public.hex if public else None,
            "algorithm": "Ed25519", "key_file": str(path)}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if public is None:
        click.echo(f"No installation key on this machine ({path}): it is made by the first "
                   "session recorded here. To check another installation's records, give its "
                   "fingerprint to `smp sessions verify --key`.")
        return
    click.echo(f"fingerprint  {data['fingerprint']}")
    click.echo(f"public key   {data['public_key']} (Ed25519)")
    click.echo(f"key file     {data['key_file']} (private: back it up, never share it)")
