"""Loader bombs: how long the strict loader takes to refuse (or accept) hostile files up to its cap.

Prints, per file, its size, the outcome, the worst and median wall time over several runs and the
peak memory (tracemalloc). `--load N` keeps N busy processes running meanwhile, as on a loaded
CI machine. The promise (docs/safety.md, "Input bombs"): every file up to the cap is refused or
accepted within 100 ms.

    python bench/loader.py --load 2
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import time
import tracemalloc

from smpdevice.loader import DEFAULT_MAX_BYTES, TOML_MAX_BYTES, LoadError, load_bytes

CAP = DEFAULT_MAX_BYTES


def _fill(head: str, unit: str, tail: str = "") -> str:
    """`head` + as many `unit`s as fit under the cap + `tail`."""
    n = (CAP - len(head) - len(tail)) // len(unit)
    return head + unit * n + tail


def cases() -> dict[str, tuple[str, str]]:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    return {
        "yaml billion laughs (470 B)": (laughs, "yaml"),
        "yaml flow list of ints": (_fill("a: [", "1,", "1]"), "yaml"),
        "yaml block mapping": (_fill("", "k: 1\n"), "yaml"),  # duplicate on line 2
        "yaml many keys": ("".join(f"k{i}: {i}\n" for i in range(80_000))[:CAP], "yaml"),
        "yaml plan of passes": (_fill("plan:\n", "  - {zone: crown, duration_s: 3}\n"), "yaml"),
        "yaml deep nesting": (_fill("a: ", "["), "yaml"),
        "yaml one long string": (_fill("a: '", "x", "'"), "yaml"),
        "yaml long digits": (_fill("a: ", "9"), "yaml"),
        "yaml long needle": (_fill("needle: 1RL 0.", "2", "5 mm x"), "yaml"),
        "yaml comment": (_fill("a: 1\n#", "x"), "yaml"),
        "json list of ints": (_fill('{"a": [', "1,", "1]}"), "json"),
        "json objects": (_fill('{"a": [', "{},", "{}]}"), "json"),
        "json deep nesting": (_fill('{"a": ', "["), "json"),
        "json long string": (_fill('{"a": "', "\\n", '"}'), "json"),
        "json long number": (_fill('{"a": ', "9", "}"), "json"),
        "toml many keys": ("".join(f"k{i} = {i}\n" for i in range(100_000))[:CAP], "toml"),
        "toml long string (128 KiB cap)": ('a = "' + "x" * (TOML_MAX_BYTES - 8) + '"\n', "toml"),
    }


def _busy() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def measure(text: str, kind: str, runs: int) -> tuple[str, float, float, float]:
    times = []
    outcome = ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            load_bytes(text, kind=kind, source="bomb")
            outcome = "accepted"
        except LoadError as exc:
            outcome = "refused: " + exc.problem[:48]
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    with contextlib.suppress(LoadError):
        load_bytes(text, kind=kind, source="bomb")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, max(times), statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--load", type=int, default=0, help="busy processes meanwhile")
    args = parser.parse_args()
    workers = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(args.load)]
    for w in workers:
        w.start()
    load_bytes("warm: up\n")  # imports and compiled patterns are a one-time cost, not a file's
    try:
        print(f"cap {CAP:,} bytes; {args.runs} runs; {args.load} busy processes")
        print(f"{'file':30} {'bytes':>9} {'worst ms':>9} {'median ms':>9} {'peak MiB':>8}  outcome")
        worst = 0.0
        for name, (text, kind) in cases().items():
            outcome, high, median, peak = measure(text, kind, args.runs)
            worst = max(worst, high)
            print(f"{name:30} {len(text.encode()):>9,} {high * 1000:>9.1f} {median * 1000:>9.1f}"
                  f" {peak / 2**20:>8.1f}  {outcome}")
        print(f"worst of all: {worst * 1000:.1f} ms (promise: 100 ms)")
    finally:
        for w in workers:
            w.terminate()
            w.join()


if __name__ == "__main__":
    main()
