"""``lightning-dims measure``: K_F and intrinsic dimension of a dataset, in seconds.

Prints a human summary, or with ``--json`` one JSON object on stdout with at least
``dataset, n, label_sharpness, d_data, estimator, k, preprocessing, seconds``, plus ``cached``
(served from the on-disk property cache), ``domain``, ``classes``, ``fingerprint``.

The measured images are the training set of the task a ``lightning-dims fit`` run with the same
dataset, classes, sizes, spec and seed trains on (test and validation sets are drawn first), so
the numbers and their cache entry are shared with training runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict

from lightning_dims.cli import user_errors
from lightning_dims.data import (
    DatasetTask,
    MissingDatasetError,
    SplitError,
    UnknownDatasetError,
)
from lightning_dims.errors import UsageError
from lightning_dims.properties.sharpness_stability import label_sharpness_stability

__all__ = ["build_parser", "main", "measure", "parse_classes", "parse_options"]


def parse_classes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--classes takes comma-separated integers like 3,8, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-dims measure", description="Label sharpness K_F and intrinsic dimension d_data of a dataset."
    )
    parser.add_argument("--dataset", required=True, help="registry name (lightning-dims datasets lists them)")
    parser.add_argument(
        "--classes", help="class pair (or set) to keep, e.g. 3,8; default: a seeded random pair (natural sets) or all"
    )
    parser.add_argument("--n", type=int, default=1000, help="training images to measure (class-balanced)")
    parser.add_argument("--val-size", type=int, default=200, help="validation images set aside first (as in fit)")
    parser.add_argument("--test-size", type=int, default=750, help="test images set aside first (as in fit)")
    parser.add_argument("--img-size", type=int, default=224, help="square side in pixels (paper: 224)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None, help="default: the dataset's native")
    parser.add_argument("--intensity", choices=("max255", "max1", "raw"), default="max255")
    parser.add_argument("--estimator", choices=("mle", "twonn"), default="mle")
    parser.add_argument("--k", type=int, default=20, help="MLE neighbours (paper: 20)")
    parser.add_argument("--m", type=int, default=1000, help="images sampled for K_F (paper: 1000)")
    parser.add_argument("--kf-mode", choices=("exhaustive", "paper"), default="exhaustive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-root", help="folder holding the dataset files (default: $LIGHTNING_DIMS_DATA, else ./data)"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option, e.g. --option d=8 for synthetic (lightning-dims datasets lists them)",
    )
    parser.add_argument("--download", action="store_true", help="let torchvision download a missing natural dataset")
    parser.add_argument(
        "--no-cache", action="store_true", help="compute afresh, and replace the cached entry with the new numbers"
    )
    parser.add_argument(
        "--kf-spread", type=int, default=0, metavar="R",
        help="also report K_F's spread over R draws at m/8, m/4, m/2 and m images (label_sharpness_spread)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def parse_options(items: list[str]) -> dict:
    """``["d=8", "contrast=0.2"]`` -> ``{"d": 8, "contrast": 0.2}`` (values parsed as JSON when they can be)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def measure(args: argparse.Namespace) -> dict:
    """The property record of the task the arguments describe; bad input exits with one line."""
    try:
        task = DatasetTask(
            name=args.dataset,
            classes=parse_classes(args.classes),
            train_size=args.n,
            val_size=args.val_size,
            test_size=args.test_size,
            size=args.img_size,
            channels=args.channels,
            intensity=args.intensity,
            seed=args.seed,
            data_root=args.data_root,
            download=args.download,
            options=parse_options(args.option),
        )
        record = task.properties(
            m=args.m,
            k=args.k,
            estimator=args.estimator,
            kf_mode=args.kf_mode,
            cache="refresh" if args.no_cache else "use",
            progress=not args.quiet and not args.json,
        ).to_json()
        if args.kf_spread:
            sizes = sorted({max(2, args.m // 8), max(2, args.m // 4), max(2, args.m // 2), args.m})
            spreads = label_sharpness_stability(
                task.images("train"), task.labels("train"), ms=sizes, repeats=args.kf_spread, seed=args.seed, mode=args.kf_mode
            )
            record["label_sharpness_spread"] = [asdict(spread) for spread in spreads]
        return record
    except (MissingDatasetError, UnknownDatasetError, SplitError, ValueError) as error:
        raise UsageError(str(error)) from None


@user_errors("lightning-dims measure")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 2:
        raise UsageError(f"--n {args.n}: K_F and d_data need training images (MLE with --k {args.k} needs at least {args.k + 1})")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        record = measure(args)
    for warning in caught:
        print(f"lightning-dims measure: warning: {warning.message}", file=sys.stderr)
    record["seconds"] = round(time.perf_counter() - started, 3)
    if args.json:
        print(json.dumps(record))
        return 0
    kf, dim = record["label_sharpness_detail"], record["d_data_detail"]
    source = "cache" if record["cached"] else f"computed in {record['compute_seconds']:.2f} s"
    print(
        f"{record['dataset']} ({record['domain']}): n={record['n']} classes={record['classes']} "
        f"{record['class_names']} spec={record['preprocessing']['key']}\n"
        f"  K_F    = {record['label_sharpness']:.4g} (1/intensity units; {kf['mode']}, m={kf['m']}, closest "
        f"cross-label pair: pool images {record['kf_pair_pool_indices']} at distance {kf['pair_distance']:.4g})\n"
        f"  d_data = {record['d_data']:.3f} ({record['estimator']}, k={record['k']}, "
        f"{dim.get('n_duplicates', 0)} duplicates dropped)\n"
        f"  {record['seconds']:.2f} s ({source}; fingerprint {record['fingerprint'][:12]})"
    )
    for spread in record.get("label_sharpness_spread", []):
        print(
            f"  K_F over {len(spread['values'])} draws of m={spread['m']:<5} {spread['mean']:.4g} +- {spread['std']:.2g} "
            f"(range {spread['min']:.4g} .. {spread['max']:.4g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
