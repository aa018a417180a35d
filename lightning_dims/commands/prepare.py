"""``lightning-dims prepare NAME --source DIR --out DIR [--paper | options]``: a radiology dataset from its download.

Turns the official download of one of the paper's radiology datasets (``brats dbc prostate rsna
chexpert mura oai``) into images and a ``manifest.csv`` (path, label, patient_id, source
identifiers) by the authors' extraction procedure; every choice is an option whose default is
theirs (``lightning-dims prepare NAME --help``). Resumable (run the same command again after a
kill), parallel (``--workers``), and every file it could not use is listed in
``prepare_report.csv`` and summarised on stderr. Procedures: ``docs/datasets/<name>.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from lightning_dims.cli import user_errors
from lightning_dims.prepare import PREPARERS, Preparer, Summary, get_preparer, prepare

__all__ = ["PROG", "build_parser", "default_workers", "main", "overview", "print_summary"]

PROG = "lightning-dims prepare"


def overview() -> str:
    lines = [f"usage: {PROG} NAME --source DIR --out DIR [--paper | options] [--workers N]", "", "datasets:"]
    lines += [f"  {name:<9} {preparer.title}" for name, preparer in sorted(PREPARERS.items())]
    lines += [
        "",
        f"{PROG} NAME --help lists NAME's options; their defaults are the authors' procedure.",
        "Write to --out ROOT/NAME, then: lightning-dims measure --dataset NAME --data-root ROOT",
        "OAI: the knee crops are yours (the authors' detector weights are not public); see lightning-dims prepare oai --help.",
    ]
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def build_parser(preparer: Preparer) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {preparer.name}",
        description=f"{preparer.title}. Get it: {preparer.obtain}.",
        epilog=f"Procedure, and where it differs from the authors': {preparer.doc}",
    )
    parser.add_argument("--source", required=True, help=f"the download: {preparer.source}")
    parser.add_argument("--out", required=True, help=f"new folder for images + manifest.csv; use ROOT/{preparer.name} to measure with --data-root ROOT")
    parser.add_argument("--paper", action="store_true", help="exactly the authors' procedure: refuse any option set to something else")
    parser.add_argument("--workers", type=int, default=default_workers(), help="parallel processes (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    group = parser.add_argument_group("procedure (every default is the authors' choice)")
    for option in preparer.options:
        text = option.help if option.location else f"{option.help} [default: {option.default}]"
        group.add_argument(option.flag, dest=option.name, type=option.type, choices=option.choices, default=argparse.SUPPRESS, help=text.replace("%", "%%"))
    return parser


def print_summary(summary: Summary, root_hint: bool) -> None:
    if summary.already_done:
        print(f"{summary.dataset}: already prepared in {summary.out} (delete the folder to prepare again)")
    classes = ", ".join(f"{label}: {count}" for label, count in summary.classes.items())
    print(f"{summary.dataset}: {summary.images} images ({classes}) of {summary.patients} patients in {summary.manifest}")
    if root_hint:
        print(f"measure: lightning-dims measure --dataset {summary.dataset} --data-root {summary.out.parent}")
    else:
        print(f"measure: lightning-dims measure --dataset csv --data-root {summary.manifest}  (or move the folder to ROOT/{summary.dataset})")
    if len(summary.classes) < 2:
        print(f"{PROG}: warning: only class {', '.join(summary.classes)} was prepared; a task needs both", file=sys.stderr)
    if summary.resumed:
        print(f"{PROG}: continued an interrupted prepare ({summary.resumed} files were already done)", file=sys.stderr)
    for kind in ("bad", "unexpected", "fixed", "note"):
        reasons = Counter(issue.reason for issue in summary.issues if issue.kind == kind)
        if reasons:
            listed = "; ".join(f"{count} x {reason}" for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
            warning = "warning: " if kind == "fixed" else ""
            print(f"{PROG}: {warning}{sum(reasons.values())} {kind}: {listed} (listed in {summary.report})", file=sys.stderr)


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(overview())
        return 0
    preparer = get_preparer(args[0])
    parsed = build_parser(preparer).parse_args(args[1:])
    given = {option.name: getattr(parsed, option.name) for option in preparer.options if hasattr(parsed, option.name)}
    try:
        summary = prepare(preparer.name, parsed.source, parsed.out, given, paper=parsed.paper, workers=parsed.workers, progress=not parsed.quiet)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    print_summary(summary, root_hint=summary.out.name == preparer.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
