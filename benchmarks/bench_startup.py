"""Start-up per run, cold against warm, and what it does to a sweep: 6 tiny runs with one worker against one run alone.

    python benchmarks/bench_startup.py [--runs 6] [--json out.json]
    python benchmarks/bench_startup.py --fork-check 20     # also 20 runs in a row from one worker

The probe grid of :mod:`lightning_dims.sweep.startup` (real ``fit`` runs: timm's ``test_resnet``
on the embedded digits, 16 px, one epoch of 40 images, W&B offline) goes through the sweep
runner's ``run_one`` in one slot, one run after the other, four ways in one process, interleaved
so that a change in the machine's load hits every way alike: one run cold, ``--runs`` runs
cold, one run warm, ``--runs`` runs warm (the worker's start and end included in the wall time).

Printed: per run, its wall time and start-up (wall time minus the record's ``wall_time_s``, i.e.
process or fork, imports, CLI, W&B's start, data setup, claim, exit), the worker's preload, and
the ratio ``wall(--runs runs) / wall(one run alone)`` cold and warm; the target (issue 21) is
6 warm runs <= 2.5 x one cold run alone. Run it on an otherwise quiet machine, or read the ratios
(each measured within this one process).

``--fork-check N``: N probe runs forked one after the other from one worker (each trains with
torch's OpenMP threads, reads the digits through numpy and scikit-learn, and logs an offline W&B
run through the worker's service); it prints how many finished: the fork-safety claim of
:mod:`lightning_dims.sweep.warm`, measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from lightning_dims.sweep.startup import ProbeFailed, SweepTiming, time_probe_runs


def fork_check(children: int) -> tuple[int, float]:
    """``children`` probe runs forked one after the other from one worker; (how many finished, seconds)."""
    started = time.perf_counter()
    try:
        timing = time_probe_runs(children, warm=True)
    except ProbeFailed as error:
        print(f"fork check: {error}")
        return 0, time.perf_counter() - started
    return len(timing.run_s), timing.total_s


def describe(timing: SweepTiming) -> str:
    way = "warm" if timing.warm else "cold"
    runs = len(timing.run_s)
    preload = f"; worker preload {timing.preload_s:.1f} s" if timing.preload_s is not None else ""
    return (
        f"{way:>4}, {runs} run{'s' if runs != 1 else ' '}: wall {timing.total_s:6.1f} s; per run {statistics.median(timing.run_s):5.1f} s, "
        f"start-up {timing.startup_median_s:5.1f} s (median){preload}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="runs of the sweep compared with one run alone")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--fork-check", type=int, default=0, metavar="N", help="also fork N checking children (see above)")
    args = parser.parse_args(argv)

    timings: dict[str, SweepTiming] = {}
    for name, runs, warm in (("cold_1", 1, False), ("warm_1", 1, True), ("cold_n", args.runs, False), ("warm_n", args.runs, True)):
        timings[name] = time_probe_runs(runs, warm)
        print(describe(timings[name]), flush=True)
    alone = timings["cold_1"].total_s
    ratios = {
        "cold_n_over_cold_1": timings["cold_n"].total_s / alone,
        "warm_n_over_warm_1": timings["warm_n"].total_s / timings["warm_1"].total_s,
        "warm_n_over_cold_1": timings["warm_n"].total_s / alone,
    }
    print(f"{args.runs} runs vs one run alone: cold {ratios['cold_n_over_cold_1']:.2f}x; warm {ratios['warm_n_over_warm_1']:.2f}x "
          f"(against one warm run, worker start included), {ratios['warm_n_over_cold_1']:.2f}x against one cold run "
          f"(target: <= 2.5x)")  # fmt: skip
    cold_startup, warm_startup = timings["cold_n"].startup_median_s, timings["warm_n"].startup_median_s
    print(f"start-up per run: cold {cold_startup:.1f} s, warm {warm_startup:.1f} s ({cold_startup / warm_startup:.0f}x less), "
          f"plus {timings['warm_n'].preload_s:.1f} s once per worker")  # fmt: skip
    figures = {"ratios": ratios, "timings": {name: {**vars(t), "startup_s": t.startup_s} for name, t in timings.items()}}
    if args.fork_check:
        good, seconds = fork_check(args.fork_check)
        print(f"fork check: {good} of {args.fork_check} forked children ended well ({seconds:.0f} s)")
        figures["fork_check"] = {"children": args.fork_check, "ended_well": good}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
