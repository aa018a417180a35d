"""Speed of the property estimators against named baselines, in one run on the same data.

    python benchmarks/bench_estimators.py [--n 1750] [--size 224] [--repeats 3]

Data: real MNIST digits from $LIGHTNING_DIMS_DATA (the embedded scikit-learn digits otherwise),
preprocessed with the paper's spec (per-image max 255, 224 x 224, 1 channel): N x 50,176 float32.

Prints the best-of-``repeats`` wall time of:
* ours: ``lightning_dims.intrinsic_dimension(x, "mle", k=20)`` (exact kNN, dedup, MLE);
* skdim: ``skdim.id.MLE(unbiased=True).fit(X, n_neighbors=20, comb="mle")`` on the same array;
* gemm: one ``X @ X.T`` in torch float32, the compute floor of any exact kNN from a Gram matrix;
* K_F: ``label_sharpness(x, y, m=1000)`` exhaustive (all 499,500 pairs) and ``mode="paper"``;
and the ratios, plus the agreement of the two MLE numbers.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import skdim
import torch

from lightning_dims import intrinsic_dimension, label_sharpness
from lightning_dims.data.spec import PreprocessingSpec, preprocess


def load_images(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    root = os.environ.get("LIGHTNING_DIMS_DATA")
    if root and (Path(root) / "MNIST" / "raw").is_dir():
        from torchvision.datasets import MNIST

        mnist = MNIST(root, train=True, download=False)
        return mnist.data[:n], mnist.targets[:n], "MNIST train"
    from sklearn.datasets import load_digits

    digits = load_digits()
    repeats = int(np.ceil(n / len(digits.target)))
    images = torch.from_numpy(np.tile(digits.images, (repeats, 1, 1))[:n].astype(np.float32))
    images += torch.rand(images.shape, generator=torch.Generator().manual_seed(0))  # no exact repeats
    return images, torch.from_numpy(np.tile(digits.target, repeats)[:n]), "scikit-learn digits (+noise)"


def best_time(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1750)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    raw, labels, source = load_images(args.n)
    x = preprocess(raw, PreprocessingSpec(size=args.size, channels=1, intensity="max255")).reshape(args.n, -1)
    x_numpy = x.numpy()
    print(f"data: {source}, N={x.shape[0]}, D={x.shape[1]}, float32, torch threads={torch.get_num_threads()}")

    t_gemm, _ = best_time(lambda: x @ x.T, args.repeats)
    t_ours, ours = best_time(lambda: intrinsic_dimension(x, "mle", k=20), args.repeats)
    t_skdim, theirs = best_time(
        lambda: skdim.id.MLE(unbiased=True).fit(x_numpy, n_neighbors=20, comb="mle").dimension_, args.repeats
    )
    t_exhaustive, kf = best_time(lambda: label_sharpness(x, labels, m=args.m), args.repeats)
    t_paper, kf_paper = best_time(lambda: label_sharpness(x, labels, m=args.m, mode="paper"), args.repeats)

    print(f"{'what':<38}{'seconds':>9}")
    print(f"{'gemm  X @ X.T (floor)':<38}{t_gemm:>9.3f}")
    print(f"{'ours  MLE k=20':<38}{t_ours:>9.3f}")
    print(f"{'skdim MLE(unbiased) k=20':<38}{t_skdim:>9.3f}")
    print(f"{'ours  K_F exhaustive m=' + str(args.m):<38}{t_exhaustive:>9.3f}")
    print(f"{'ours  K_F paper mode m=' + str(args.m):<38}{t_paper:>9.3f}")
    print(f"speed-up vs skdim: {t_skdim / t_ours:.2f}x   ours / GEMM floor: {t_ours / t_gemm:.2f}x")
    print(f"d_data ours {float(ours):.6f}  skdim {theirs:.6f}  relative difference {abs(float(ours) / theirs - 1):.1e}")
    print(
        f"K_F exhaustive {float(kf):.4e} ({kf.n_pairs} cross-label pairs)   "
        f"paper {float(kf_paper):.4e} ({kf_paper.n_pairs} pairs)   exhaustive/paper time {t_exhaustive / t_paper:.2f}x"
    )


if __name__ == "__main__":
    main()
