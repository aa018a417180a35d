"""``lightning-dims report --results DIR --out DIR``: report.md, PNG figures and fits.json from results records."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lightning_dims.analysis.report import write_report
from lightning_dims.data.spec import SpecMismatchError
from lightning_dims.records import read_records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-dims report", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--results", required=True, help="folder searched recursively for *.record.json")
    parser.add_argument("--out", required=True, help="folder to write report.md, fits.json and the figures into")
    parser.add_argument("--spec", help="preprocessing spec key to report when the records mix several (e.g. 224px-1ch-max255)")
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
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if line.strip():
                try:
                    measurements.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path} line {number} is not JSON ({error.msg}); expected `measure --json` output") from None
    return measurements


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fits = write_report(read_records(args.results), args.out, spec=args.spec, ref_n=args.ref_n,
                            measurements=read_measurements(args.measurements))
    except (FileNotFoundError, SpecMismatchError, ValueError) as error:
        print(f"lightning-dims report: {error}", file=sys.stderr)
        return 2
    print(f"report of {fits['n_runs']} runs ({fits['spec']}) written to {args.out}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
