"""``lightning-dims sweep SWEEP.yaml``: a W&B grid sweep run locally (W&B offline unless configured)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_dims.sweep.grid import SweepFileError, expand_grid, load_sweep, shard
from lightning_dims.sweep.runner import run_sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-dims sweep", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("sweep", help="W&B sweep YAML with method: grid (e.g. sweeps/quick.yaml)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once on this machine")
    parser.add_argument("--shard", help="i/n: run every n-th grid point starting at the i-th (one shard per node)")
    parser.add_argument("--results", default="results", help="folder for records, run folders and logs")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their commands, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = expand_grid(load_sweep(args.sweep))
        if args.shard:
            runs = shard(runs, args.shard)
    except SweepFileError as error:
        print(f"lightning-dims sweep: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        for run in runs:
            print(run.run_id, " ".join(run.argv))
        return 0
    outcomes = run_sweep(runs, Path(args.results), workers=args.workers)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("finished", "skipped", "failed")}
    print(f"sweep {args.sweep}: {counts['finished']} finished, {counts['skipped']} already done, {counts['failed']} failed; "
          f"records in {args.results}")
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"  failed: {outcome.run_id} (see {outcome.log}); re-run the same command to retry or resume it")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
