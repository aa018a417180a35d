"""``lightning-dims measure``: K_F and intrinsic dimension of a dataset, in seconds.

Prints a human summary, or with ``--json`` one JSON object on stdout with at least
``dataset, n, label_sharpness, d_data, estimator, k, preprocessing, seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from lightning_dims.data.spec import PreprocessingSpec, preprocess
from lightning_dims.properties import intrinsic_dimension, label_sharpness


def parse_classes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"lightning-dims measure: --classes takes comma-separated integers like 3,8, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-dims measure", description="Label sharpness K_F and intrinsic dimension d_data of a dataset."
    )
    parser.add_argument("--dataset", required=True, help="registry name (lightning-dims datasets lists them)")
    parser.add_argument("--classes", help="class pair (or set) to keep, e.g. 3,8; default: all classes")
    parser.add_argument("--n", type=int, default=1000, help="images to measure (class-balanced sample)")
    parser.add_argument("--img-size", type=int, default=224, help="square side in pixels (paper: 224)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--intensity", choices=("max255", "max1", "raw"), default="max255")
    parser.add_argument("--estimator", choices=("mle", "twonn"), default="mle")
    parser.add_argument("--k", type=int, default=20, help="MLE neighbours (paper: 20)")
    parser.add_argument("--m", type=int, default=1000, help="images sampled for K_F (paper: 1000)")
    parser.add_argument("--kf-mode", choices=("exhaustive", "paper"), default="exhaustive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", help="folder holding the dataset files (default: $LIGHTNING_DIMS_DATA)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def load_images(name: str, classes: list[int] | None, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw images and labels for a measurement (embedded ``digits`` until the registry lands)."""
    if name != "digits":
        raise SystemExit(f"lightning-dims measure: unknown dataset {name!r}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32))
    labels = torch.from_numpy(digits.target.astype(np.int64))
    if classes:
        keep = torch.isin(labels, torch.tensor(classes))
        images, labels = images[keep], labels[keep]
    if n < len(labels):
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
        images, labels = images[pick], labels[pick]
    return images, labels


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    spec = PreprocessingSpec(size=args.img_size, channels=args.channels, intensity=args.intensity)
    images, labels = load_images(args.dataset, parse_classes(args.classes), args.n, args.seed)
    x = preprocess(images, spec)
    sharpness = label_sharpness(x, labels, m=args.m, mode=args.kf_mode, seed=args.seed)
    dimension = intrinsic_dimension(x, estimator=args.estimator, k=args.k, progress=not args.quiet and not args.json)
    record = {
        "dataset": args.dataset,
        "classes": sorted(int(c) for c in torch.unique(labels)),
        "n": int(x.shape[0]),
        "label_sharpness": sharpness.value,
        "d_data": dimension.dimension,
        "estimator": dimension.estimator,
        "k": dimension.k,
        "preprocessing": spec.model_dump() | {"key": spec.key()},
        "label_sharpness_detail": sharpness.to_dict(),
        "d_data_detail": dimension.to_dict(),
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print(json.dumps(record))
    else:
        print(
            f"{args.dataset}: n={record['n']} classes={record['classes']} spec={spec.key()}\n"
            f"  K_F    = {sharpness.value:.4g} (1/intensity units; {sharpness.mode}, m={sharpness.m}, "
            f"closest cross-label pair {sharpness.pair} at distance {sharpness.pair_distance:.4g})\n"
            f"  d_data = {dimension.dimension:.3f} ({dimension.estimator}, k={dimension.k}, "
            f"{dimension.n_duplicates} duplicates dropped)\n"
            f"  {record['seconds']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
