"""``lightning-dims report --results DIR --out DIR``: report.md, PNG figures and fits.json from results records.

Reads every ``*.record.json`` below ``--results`` (or, with ``--from-wandb ENTITY/PROJECT[/SWEEP_ID]``,
the records the finished runs saved into W&B, downloaded into ``<out>/wandb-records/``), keeps one
record per run id (the newest finished), and pools only runs of one protocol
(``lightning_dims.records.selection``); it prints how many records it read, used and skipped, and why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lightning_dims.analysis.report import write_report
from lightning_dims.analysis.skips import Skip
from lightning_dims.cli import user_errors
from lightning_dims.errors import UsageError
from lightning_dims.records.selection import select_records
from lightning_dims.tracking.source import wandb_records

__all__ = ["PROG", "WANDB_DOWNLOADS", "build_parser", "main", "read_measurements"]

PROG = "lightning-dims report"
WANDB_DOWNLOADS = "wandb-records"
"""Sub-folder of ``--out`` the W&B records are downloaded into (``<run id>.record.json``: a results folder)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(":", 1)[1].strip().split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", help="folder searched recursively for *.record.json")
    source.add_argument(
        "--from-wandb", metavar="ENTITY/PROJECT[/SWEEP_ID]",
        help="read the records the finished runs of a W&B project (or sweep) saved, through the W&B API",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="folder to write report.md, fits.json and the figures into")
    parser.add_argument("--spec", help="preprocessing spec key to report when the records mix several (e.g. 224px-1ch-max255)")
    parser.add_argument("--protocol", help="the protocol hash to report when the records mix several (the error lists them)")
    parser.add_argument(
        "--vary", action="append", default=[], metavar="KEY",
        help="a config key the grid varies beyond dataset, N, arch and seed (e.g. model.lr); repeatable",
    )  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="fail when any record is skipped, instead of saying why")
    parser.add_argument(
        "--ref-n", type=int,
        help="training size at which each task's K_F and d_data are taken (default: the largest N every task has)",
    )  # fmt: skip
    parser.add_argument(
        "--measurements", action="append", default=[], metavar="FILE",
        help="JSON lines from `lightning-dims measure --json` (repeatable): values at the paper's spec for the "
             "comparison with its Figure 1",
    )  # fmt: skip
    return parser


def read_measurements(paths: list[str]) -> list[dict]:
    """Every JSON object of every file (one per line, as ``measure --json`` prints them)."""
    measurements = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise ValueError(f"--measurements {path}: {error.strerror or error}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    measurements.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path} line {number} is not JSON ({error.msg}); expected `measure --json` output") from None
    return measurements


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    source = args.results
    if args.from_wandb is not None:
        source = wandb_records(args.from_wandb, Path(args.out) / WANDB_DOWNLOADS)
    try:
        selection = select_records(source, protocol=args.protocol, vary=args.vary, strict=args.strict)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    print(selection.summary(), file=sys.stderr)
    for where, why in selection.skipped:
        print(f"  skipped {where}: {why}", file=sys.stderr)
    if not selection.used:
        raise UsageError(f"nothing to report: {selection.summary()}; each skipped record is listed above with its reason")
    try:
        fits = write_report(selection.used, args.out, spec=args.spec, ref_n=args.ref_n,
                            measurements=read_measurements(args.measurements),
                            skipped=[Skip("record", where, why) for where, why in selection.skipped])
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(f"report of {fits['n_runs']} runs ({fits['spec']}, protocol {selection.protocol}) written to {args.out}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
