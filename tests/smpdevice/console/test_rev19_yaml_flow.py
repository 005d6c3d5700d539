"""Review 19: docs/console.md, Session runner: "Load a profile (file, ...) and "Check profile"".
A .yaml profile in YAML's flow style (`{client_ref: C-0042, ...}`, valid YAML, which `smp
profile check` reads) was sent as JSON because its text starts with "{", and refused as invalid
JSON. A file's format is its name's, as `smp profile check` reads it (.json as JSON, any other
as YAML); pasted text is JSON when it parses as JSON, else YAML."""

from __future__ import annotations

import json
from importlib import resources

import yaml

from smpdevice.service.auth import Role

from .conftest import pytestmark  # noqa: F401  (skip without chromium)


def _profile() -> dict:
    demo = resources.files("smpdevice") / "data" / "session1_base_density.yaml"
    return yaml.safe_load(demo.read_text())


def _check(page) -> str:
    page.evaluate("() => { document.getElementById('check-result').replaceChildren(); "
                  "document.getElementById('message').hidden = true; }")
    page.click("#check-btn")
    page.wait_for_selector("#check-result div, #message:not([hidden])")
    return page.inner_text("#check-result") or page.inner_text("#message")


def _load(page, path) -> None:
    page.set_input_files("#profile-file", str(path))
    page.wait_for_function("(n) => document.getElementById('profile-text').value.length === n",
                           arg=len(path.read_text()))


def test_a_flow_style_yaml_profile_checks_ok_from_a_file_or_pasted(page, service, tmp_path):
    flow = yaml.safe_dump(_profile(), default_flow_style=True, width=10**6)
    assert flow.startswith("{")
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role:')")
    page.click("button[data-tab=session]")
    for name in ("session1_flow.yaml", "session1_flow.yml", "session1_flow.txt"):
        (tmp_path / name).write_text(flow)
        _load(page, tmp_path / name)
        assert _check(page).startswith("profile ok"), name
    page.fill("#profile-text", flow)  # pasted: no file's name
    assert _check(page).startswith("profile ok"), "pasted flow-style YAML"
    page.fill("#profile-text", json.dumps(_profile()))
    assert _check(page).startswith("profile ok"), "pasted JSON"


def test_a_broken_json_file_is_still_read_as_json(page, service, tmp_path):
    broken = tmp_path / "session1.json"
    broken.write_text(json.dumps(_profile(), indent=1).replace('"client_ref"', "client_ref"))
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role:')")
    page.click("button[data-tab=session]")
    _load(page, broken)
    said = _check(page)
    assert "is not valid JSON" in said, said
