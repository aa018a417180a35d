"""``lightning-dims sweep SWEEP.yaml``: a W&B grid sweep run locally, each point exactly once (W&B offline unless configured).

Start it on as many processes or nodes as you like over one ``--results`` folder: each point is
claimed by one process (``lightning_dims.sweep.runner``). Re-running the same command continues:
finished points are skipped, interrupted ones resume from their last checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_dims.cli import user_errors
from lightning_dims.configs import resolve_config
from lightning_dims.errors import UsageError
from lightning_dims.sweep.check import check_runs
from lightning_dims.sweep.grid import expand_grid, load_sweep, shard
from lightning_dims.sweep.runner import point_state, run_sweep

PROG = "lightning-dims sweep"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(":", 1)[1].strip().split("\n\n")[0])
    parser.add_argument("sweep", help="W&B sweep YAML with method: grid, or a shipped one (sweeps/quick, sweeps/paper)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once in this process")
    parser.add_argument("--shard", help="i/n: only every n-th grid point starting at the i-th")
    parser.add_argument("--results", default="results", help="folder for records, run folders and logs (may be shared)")
    parser.add_argument(
        "--print-path", action="store_true",
        help="print the sweep file's path and stop (for `wandb sweep \"$(lightning-dims sweep sweeps/paper --print-path)\"`)",
    )  # fmt: skip
    parser.add_argument(
        "--wait", action="store_true",
        help="after the pass, wait for points other processes are running; take over those whose holder dies",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="list every point's run id, state (finished/resumable/claimed/failed/corrupt/new) and command, and check "
        "that every command parses and would start (typos, unknown datasets or callbacks options); run nothing",
    )  # fmt: skip
    return parser


def dry_run(runs, results: Path) -> int:
    """Print every point's state and command, then check every command; 2 when one would fail."""
    counts: dict[str, int] = {}
    for run in runs:
        state, detail = point_state(run, results)
        counts[state] = counts.get(state, 0) + 1
        print(f"{run.run_id}  {state}{f' ({detail})' if detail else ''}\n    {' '.join(run.argv)}")
    print(f"{len(runs)} points: " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items())))
    problems = check_runs(runs)
    for run_id, problem in problems:
        print(f"{PROG}: error: {run_id}: {problem}", file=sys.stderr)
    print(f"checked {len(runs)} commands: {len(problems) or 'none'} would fail")
    return 2 if problems else 0


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_path:
        try:
            print(resolve_config(args.sweep).resolve())
        except FileNotFoundError as error:
            raise UsageError(str(error)) from None
        return 0
    runs = expand_grid(load_sweep(args.sweep), cwd=Path.cwd())
    if args.shard:
        runs = shard(runs, args.shard)
    results = Path(args.results)
    if args.dry_run:
        return dry_run(runs, results)
    outcomes = run_sweep(runs, results, workers=args.workers, wait=args.wait)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("finished", "skipped", "claimed", "failed")}
    print(
        f"sweep {args.sweep}: {counts['finished']} finished, {counts['skipped']} already done, "
        f"{counts['claimed']} running elsewhere, {counts['failed']} failed; records in {args.results}"
    )
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"  failed: {outcome.run_id} (see {outcome.log}); re-run the same command to retry or resume it")
        elif outcome.status == "claimed":
            print(f"  running elsewhere: {outcome.run_id} ({outcome.detail}); --wait waits for it")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
