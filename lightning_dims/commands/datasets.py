"""``lightning-dims datasets``: every registered dataset, its domain, channels, task and local availability.

Availability is checked against the data root (``--data-root``, else ``$LIGHTNING_DIMS_DATA``,
else ``./data``) without reading any pixels. ``--json`` prints one object per line.
"""

from __future__ import annotations

import argparse
import json
import sys

from lightning_dims.cli import user_errors
from lightning_dims.data import DATASETS, resolve_data_root

__all__ = ["availability", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-dims datasets", description="List the dataset registry.")
    parser.add_argument("--data-root", help="folder to check for dataset files (default: $LIGHTNING_DIMS_DATA, else ./data)")
    parser.add_argument("--domain", help="only this domain (natural, medical, synthetic, generic)")
    parser.add_argument("--details", action="store_true", help="also print where to get each dataset and its layout")
    parser.add_argument("--json", action="store_true", help="one JSON object per dataset")
    return parser


def availability(info, root, root_given: bool) -> str:
    """``embedded``, ``present``, ``missing``, or ``needs --data-root`` (folder/csv: the root is the dataset)."""
    if info.embedded:
        return "embedded"
    if info.subdir == "" and not root_given:
        return "needs --data-root"
    return "present" if info.is_present(root) else "missing"


@user_errors("lightning-dims datasets")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = resolve_data_root(args.data_root)
    rows = [info for name, info in sorted(DATASETS.items()) if args.domain in (None, info.domain)]
    if args.json:
        for info in rows:
            record = {
                "name": info.name,
                "domain": info.domain,
                "channels": info.channels,
                "num_classes": info.num_classes,
                "default_classes": info.default_classes,
                "task": info.task,
                "available": availability(info, root, args.data_root is not None),
                "folder": None if info.embedded else str(info.folder(root)),
                "options": info.options,
                "source": info.source,
                "layout": info.layout,
            }
            print(json.dumps(record))
        return 0
    print(f"data root: {root}  (set with --data-root or $LIGHTNING_DIMS_DATA)")
    print(f"{'name':<15} {'domain':<10} {'ch':>3} {'available':<18} task")
    for info in rows:
        channels = "?" if info.channels is None else str(info.channels)
        print(f"{info.name:<15} {info.domain:<10} {channels:>3} {availability(info, root, args.data_root is not None):<18} {info.task}")
        if args.details:
            options = ", ".join(f"{key}={value}" for key, value in info.options.items())
            print(f"{'':<15} get it: {info.source}\n{'':<15} layout: {info.layout}")
            if options:
                print(f"{'':<15} options: {options}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
