"""Issue 2's benchmark: our manager alone against its targets, with PASS or MISS.

    python bench/respawn.py [--kills 30] [--repeats 1]

One daemon with 200 sleeping flies per repetition: time from process start to 200 alive,
idle CPU over 10 s, RSS, respawn latency over ``--kills`` SIGKILLs, then time to stop.
The measurements are those of run.py (``_measure.fleet``); medians over the repetitions.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _managers import Ours
from _measure import fleet

# (field, label, unit, target): a value at or under the target passes
TARGETS = [
    ("respawn_p50_ms", "respawn p50", "ms", 5.0),
    ("respawn_max_ms", "respawn max", "ms", 50.0),
    ("alive_s", "start to 200 alive", "s", 0.35),
    ("idle_cpu_pct", "idle CPU, 200 flies", "% core", 0.1),
    ("stop_s", "stop 200", "s", 0.3),
    ("rss_mb", "RSS, 200 flies", "MB", None),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs to time (>= 20)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--idle", type=float, default=10.0, help="idle CPU window, seconds")
    args = parser.parse_args(argv)

    runs = [
        fleet(Ours(), 200, args.idle, kills=max(20, args.kills), max_gap=0.1)
        for _ in range(args.repeats)
    ]
    missed = 0
    print(f"{'metric':<28} {'value':>9}  {'target':>9}  result")
    for field, label, unit, target in TARGETS:
        value = statistics.median(run[field] for run in runs)
        verdict = "" if target is None else ("PASS" if value <= target else "MISS")
        missed += verdict == "MISS"
        shown = "-" if target is None else f"<= {target:g}"
        print(f"{label + ' (' + unit + ')':<28} {value:>9.3g}  {shown:>9}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
