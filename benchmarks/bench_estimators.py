"""Speed of the property estimators against named baselines, in one run on the same data.

    python benchmarks/bench_estimators.py [--n 1750] [--size 224] [--repeats 3] [--threads T] [--rgb-like]

Data: real MNIST digits from $LIGHTNING_DIMS_DATA (``lightning_dims.data`` loader; the embedded
scikit-learn digits otherwise), preprocessed with the paper's spec (per-image max 255, 224 x 224,
1 channel): N x 50,176 float32. ``--rgb-like`` stacks three different FashionMNIST images as the
R, G, B channels of each sample (N x 150,528, dense intensities far from the origin, so the kNN
centres them): no real RGB dataset ships with the test data.

Timings are interleaved (GEMM, ours, GEMM, ours, ...) and the best of ``repeats`` is kept, so a
load that comes and goes on a shared machine hits both sides alike; wall time and process CPU
time are both reported (with ``--threads 1`` the CPU-time ratio is nearly immune to other load).

Prints:
* gemm: one ``X @ X.T`` in torch float32, the named baseline (a full Gram);
* ours: ``lightning_dims.intrinsic_dimension(x, "mle", k=20)`` (exact kNN, dedup, MLE), and its
  ratio to the GEMM;
* skdim: ``skdim.id.MLE(unbiased=True).fit(X, n_neighbors=20, comb="mle")`` on the same array;
* K_F: ``label_sharpness(x, y, m=1000)`` exhaustive (every cross-label pair) and ``mode="paper"``;
* precision: the MLE from float32 input against the same computed on float64 input (its Gram in
  float64: the float32 kNN's effect on d_data), and against scikit-dimension.
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


def load_pool(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Training images and labels of MNIST or FashionMNIST under $LIGHTNING_DIMS_DATA."""
    from lightning_dims.data import natural

    pool = getattr(natural, f"load_{name}")(Path(os.environ["LIGHTNING_DIMS_DATA"]))
    return pool.images, pool.labels


def load_images(n: int, size: int, rgb_like: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(N, D) float32 samples at the paper's spec, their labels, and where they came from."""
    root = os.environ.get("LIGHTNING_DIMS_DATA")
    if rgb_like:
        images, labels = load_pool("fashionmnist")
        spec = PreprocessingSpec(size=size, channels=1, intensity="max255")
        channels = [preprocess(torch.from_numpy(images[c * n : (c + 1) * n]), spec).reshape(n, -1) for c in range(3)]
        x = torch.cat(channels, dim=1)
        return x, torch.from_numpy(labels[:n]), "FashionMNIST train, 3 images stacked as R, G, B"
    if root and (Path(root) / "MNIST" / "raw").is_dir():
        images, labels = load_pool("mnist")
        raw, labels, source = torch.from_numpy(images[:n]), torch.from_numpy(labels[:n]), "MNIST train"
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        repeats = int(np.ceil(n / len(digits.target)))
        raw = torch.from_numpy(np.tile(digits.images, (repeats, 1, 1))[:n].astype(np.float32))
        raw += torch.rand(raw.shape, generator=torch.Generator().manual_seed(0))  # no exact repeats
        labels, source = torch.from_numpy(np.tile(digits.target, repeats)[:n]), "scikit-learn digits (+noise)"
    x = preprocess(raw, PreprocessingSpec(size=size, channels=1, intensity="max255")).reshape(n, -1)
    return x.contiguous(), labels, source


def interleaved_best(functions: dict, repeats: int) -> tuple[dict, dict, dict]:
    """Best wall and CPU seconds of each function over ``repeats`` rounds, one call of each per round."""
    wall = {name: float("inf") for name in functions}
    cpu = dict(wall)
    values = {}
    for _ in range(repeats):
        for name, fn in functions.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            values[name] = fn()
            wall[name] = min(wall[name], time.perf_counter() - start_wall)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    return wall, cpu, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1750)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch (and BLAS) threads; default: torch's")
    parser.add_argument("--rgb-like", action="store_true", help="three FashionMNIST images as R, G, B channels")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    x, labels, source = load_images(args.n, args.size, args.rgb_like)
    x_numpy = x.numpy()
    print(f"data: {source}, N={x.shape[0]}, D={x.shape[1]}, float32, torch threads={torch.get_num_threads()}")

    wall, cpu, values = interleaved_best(
        {
            "gemm": lambda: x @ x.T,
            "ours": lambda: intrinsic_dimension(x, "mle", k=20),
            "skdim": lambda: skdim.id.MLE(unbiased=True).fit(x_numpy, n_neighbors=20, comb="mle").dimension_,
            "exhaustive": lambda: label_sharpness(x, labels, m=args.m),
            "paper": lambda: label_sharpness(x, labels, m=args.m, mode="paper"),
        },
        args.repeats,
    )
    ours, theirs, kf, kf_paper = values["ours"], values["skdim"], values["exhaustive"], values["paper"]
    float64 = float(intrinsic_dimension(x.double(), "mle", k=20))

    rows = [
        ("gemm", "gemm  X @ X.T (baseline: a full Gram)"),
        ("ours", "ours  MLE k=20"),
        ("skdim", "skdim MLE(unbiased) k=20"),
        ("exhaustive", f"ours  K_F exhaustive m={args.m}"),
        ("paper", f"ours  K_F paper mode m={args.m}"),
    ]
    print(f"{'what':<40}{'wall s':>9}{'cpu s':>9}")
    for key, label in rows:
        print(f"{label:<40}{wall[key]:>9.3f}{cpu[key]:>9.3f}")
    print(
        f"ours MLE / full float32 GEMM: {wall['ours'] / wall['gemm']:.2f}x wall, {cpu['ours'] / cpu['gemm']:.2f}x cpu   "
        f"speed-up vs skdim: {wall['skdim'] / wall['ours']:.2f}x wall"
    )
    print(
        f"d_data float32 {float(ours):.7f}  float64 {float64:.7f}  relative difference "
        f"{abs(float(ours) / float64 - 1):.1e}   skdim {theirs:.6f} (relative to ours {abs(float(ours) / theirs - 1):.1e})"
    )
    print(
        f"K_F exhaustive {float(kf):.4e} ({kf.n_pairs} cross-label pairs)   "
        f"paper {float(kf_paper):.4e} ({kf_paper.n_pairs} pairs)   exhaustive/paper time {wall['exhaustive'] / wall['paper']:.2f}x"
    )


if __name__ == "__main__":
    main()
