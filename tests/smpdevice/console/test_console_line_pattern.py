"""The one-line rule's published pattern (service/schema.py LINE_PATTERN, rpc.describe) means
in a browser's JavaScript, in Unicode mode (`u`, and `v` as HTML `pattern` uses), what it means
in Python, searched as JSON Schema validators do: docs/service.md tells JavaScript clients to
compile it with `u`. Before, it ended with `$`, which Python's `re.search` also matches before a
final newline ("Ana\\n" passed a python-jsonschema client). Real Chromium, no service."""

from __future__ import annotations

import re

from smpdevice.service.schema import LINE_PATTERN

from .conftest import pytestmark  # noqa: F401  (skip without chromium)

# Every code point of the planes that hold assigned characters, the ends of the others.
SPANS = [(0x0000, 0x3FFFF), (0xE0000, 0xEFFFF), (0x40000, 0x40010), (0xDFFF0, 0xDFFFF),
         (0xF0000, 0xF0010), (0xFFFF0, 0x10000F), (0x10FFF0, 0x10FFFF)]
NAMES = ["Ana", "Ana\n", "\nAna", "Ana\n\n", "Ana\r", "x\u0301", "\u0301", "\u200b",
         "Ana\u0ece", "\u0ece\u0ece\u0ece", "\U00011f00A", "\U0001F600", "\U000e0020A", "",
         "\ud800A", "A\udfff", "\u2028A", "\u202eAna"]

JS = """([pattern, flags, spans, names]) => {
  const r = new RegExp(pattern, flags), out = [];
  for (const [lo, hi] of spans) for (let c = lo; c <= hi; c++) {
    const s = String.fromCodePoint(c);
    out.push((r.test(s) ? "1" : "0") + (r.test("A" + s) ? "1" : "0"));
  }
  return [out.join(""), names.map((n) => r.test(n))];
}"""


def _python() -> tuple[str, list[bool]]:
    p = re.compile(LINE_PATTERN)
    out = []
    for lo, hi in SPANS:
        for c in range(lo, hi + 1):
            out.append(("1" if p.search(chr(c)) else "0") + ("1" if p.search("A" + chr(c))
                                                            else "0"))
    return "".join(out), [bool(p.search(n)) for n in NAMES]


def test_the_published_pattern_means_the_same_in_javascript_and_python(page):
    """Both flags in one test: as two, `make test`'s workers each launched Chromium and made
    the Python side's searches (about 1 CPU-s each) for one of them."""
    py_codes, py_names = _python()
    assert py_names[:5] == [True, False, False, False, False]  # no newline anywhere
    for flags in ("u", "v"):
        js_codes, js_names = page.evaluate(JS, [LINE_PATTERN, flags, SPANS, NAMES])
        assert len(js_codes) == len(py_codes), flags
        differ = [] if js_codes == py_codes else [
            i for i in range(0, len(py_codes), 2) if js_codes[i:i + 2] != py_codes[i:i + 2]]
        assert differ == [], flags
        assert js_names == py_names, flags
