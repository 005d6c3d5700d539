"""Review 18c (5): README says an empty SMP_PORT or SMP_SERVICE is taken as unset (a blank
SMP_PORT is refused by name). A blank SMP_SERVICE (" ") was taken as a service URL that wins
over SMP_PORT: `smp estop` said "E-stop NOT sent: the service at   cannot be reached", exit 6,
and the pen on SMP_PORT ran on. Now a blank SMP_SERVICE is unset, for every command; a blank
typed --service stays refused. A blank SMP_KEY_DIR was a relative directory named " ": now
refused by name, as a blank SMP_DATA_DIR is."""

from __future__ import annotations

from click.testing import CliRunner

from smpdevice.cli import main


def test_a_blank_smp_service_is_unset_and_the_estop_reaches_smp_port(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_PORT", "pensim://?clock=virtual")
    monkeypatch.setenv("SMP_SERVICE", " \t")
    result = CliRunner().invoke(main, ["estop"])
    assert result.exit_code == 0 and "E-stop latched on pen" in result.output, result.output
    shown = CliRunner().invoke(main, ["envelope", "show"])  # no service: the station's own
    assert shown.exit_code == 0 and '"source": "service' not in shown.output, shown.output
    typed = CliRunner().invoke(main, ["estop", "--service", " "])
    assert typed.exit_code == 2 and "--service" in typed.output, typed.output


def test_a_blank_smp_key_dir_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMP_KEY_DIR", " ")
    result = CliRunner().invoke(main, ["keys", "show"])
    assert result.exit_code != 0 and "SMP_KEY_DIR is not valid" in result.output, result.output
    assert list(tmp_path.iterdir()) == []
