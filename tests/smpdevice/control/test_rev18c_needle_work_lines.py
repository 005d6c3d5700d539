"""Review 18 b18g: `needle-work.jsonl` (control/needle_work.py) as written and read.

A line torn by a crash mid-write (no newline at the file's end) once made the next needle
work's line glue onto it (that work then unread, its counters lost); a file that is a link
leading nowhere (its target on a drive not mounted now) read as "no needle work" though
README says a file that cannot be read sets the count aside."""
from __future__ import annotations

from pathlib import Path

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from smpdevice.control.needle_work import NEEDLE_WORK_NAME, append_line, read_needle_work
from smpdevice.paths import data_dir
from tests.smpdevice.conftest import true_calibration

LINE = ('{"pen_serial": "SMP-A", "what": "x", "at": "?", '
        '"counters": {"uptime_ms": 5000, "impressions": 12, "strokes": 30}}')
BEGIN = {"uptime_ms": 1000, "impressions": 0, "strokes": 0}
END = {"uptime_ms": 9000, "impressions": 40, "strokes": 90}


def test_a_line_after_a_torn_one_is_a_line_of_its_own() -> None:
    directory: Path = data_dir()
    (directory / NEEDLE_WORK_NAME).write_text('{"pen_serial": "SMP-OTHER", "wh')  # torn
    # a pen on the clock its controller drives: no lease to lapse on a loaded machine
    with PenSimulator(seed=1, clock=VirtualClock(host_driven=True)) as sim, \
            PenController.connect(sim.url, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.4, speed_hz=90, duty_pct=40, period_ms=120)
        pen.arm()
        pen.start_needle()
        pen.stop_needle()
        serial = sim.serial
    work = read_needle_work([directory], serial)
    assert [what for what, _c, _at in work.marks] == ["a needle start outside a session"], \
        (directory / NEEDLE_WORK_NAME).read_text()
    assert len(work.unread) == 1  # the torn line alone, named


def test_lines_on_an_untorn_file_leave_no_blank_line(tmp_path: Path) -> None:
    append_line(tmp_path / NEEDLE_WORK_NAME, LINE)
    append_line(tmp_path / NEEDLE_WORK_NAME, LINE)
    assert (tmp_path / NEEDLE_WORK_NAME).read_text() == LINE + "\n" + LINE + "\n"


def test_a_needle_work_file_linked_to_nowhere_is_cannot_tell(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    append_line(drive / NEEDLE_WORK_NAME, LINE)
    data = tmp_path / "data"
    data.mkdir()
    (data / NEEDLE_WORK_NAME).symlink_to(drive / NEEDLE_WORK_NAME)
    assert len(read_needle_work([data], "SMP-A").marks) == 1  # mounted: its line is read
    drive.rename(tmp_path / "unmounted")  # the drive gone: the link leads nowhere
    gone = read_needle_work([data], "SMP-A")
    why = gone.why_not_counted(BEGIN, END)
    assert why is not None and "a link leading nowhere" in why, why
    # no file at all is still no needle work
    assert read_needle_work([tmp_path / "unmounted" / "none"], "SMP-A").why_not_counted(
        BEGIN, END) is None
