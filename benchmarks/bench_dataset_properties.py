"""K_F and d_data from one symmetric Gram (``dataset_properties``) against one full GEMM and the two-pass way.

    python benchmarks/bench_dataset_properties.py [--n 1750] [--size 224] [--repeats 2] [--threads 1] [--rgb-like]

Data: as ``bench_estimators.py`` (MNIST training images at the paper's spec from
$LIGHTNING_DIMS_DATA, N x 50,176 float32; ``--rgb-like``: three FashionMNIST images as R, G, B,
dense and far from the origin, so the Gram is taken of centred panels).

Prints, for one thread by default (CPU time, the best of ``repeats``, interleaved):
* gemm: one ``X @ X.T`` in torch float32 (the named baseline);
* one Gram: ``dataset_properties(x, y, m=1000, k=20)``, and its ratio to the GEMM;
* two passes: ``label_sharpness(x, y, m=1000)`` + ``intrinsic_dimension(x, "mle", k=20)``;
* peak memory growth of each, in a fresh process that has loaded the data (``VmHWM`` after
  the call minus before it), as a multiple of the data's size;
* whether the two ways agree (K_F equal, d_data relative difference).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lightning_dims import dataset_properties, intrinsic_dimension, label_sharpness
from lightning_dims.properties.knn import centring_mean

sys.path.insert(0, str(Path(__file__).parent))
from bench_estimators import load_images  # noqa: E402

WAYS = {
    "one Gram": lambda x, y: dataset_properties(x, y, m=1000, k=20),
    "two passes": lambda x, y: (label_sharpness(x, y, m=1000), intrinsic_dimension(x, "mle", k=20)),
    "gemm": lambda x, y: x @ x.T,
}


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def read_npy(path: str) -> np.ndarray:
    """A saved array read straight into its final buffer (``np.load`` holds the file's bytes and the array at once,
    which would set the process's peak memory before the call is measured)."""
    with open(path, "rb") as handle:
        np.lib.format.read_magic(handle)
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
        handle.readinto(memoryview(array).cast("B"))
    return array


def peak_resident_bytes() -> int:
    """This process's peak resident memory (``VmHWM``; unlike ``ru_maxrss`` it does not inherit the parent's peak)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def peak_growth(way: str, data: Path, threads: int) -> int:
    """Bytes by which ``way`` raises the peak resident memory of a fresh process holding the data."""
    code = (
        "import json, sys, torch\n"
        f"torch.set_num_threads({threads})\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from bench_dataset_properties import WAYS, peak_resident_bytes, read_npy\n"
        f"x = torch.from_numpy(read_npy({str(data / 'x.npy')!r})); y = torch.from_numpy(read_npy({str(data / 'y.npy')!r}))\n"
        f"WAYS[{way!r}](x[:64].clone(), y[:64].clone())  # libraries loaded, BLAS buffers made\n"
        "before = peak_resident_bytes()\n"
        f"WAYS[{way!r}](x, y)\n"
        "print(json.dumps(peak_resident_bytes() - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1750)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rgb-like", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y, source = load_images(args.n, args.size, args.rgb_like)
    centred = centring_mean(x, torch.linalg.vector_norm(x, dim=1) ** 2) is not None
    data_bytes = x.numel() * x.element_size()
    print(f"{source}: N = {x.shape[0]}, D = {x.shape[1]}, {data_bytes / 2**20:.0f} MiB float32, "
          f"{'centred panel by panel' if centred else 'not centred'}; {args.threads} thread(s)")
    best = {way: float("inf") for way in WAYS}
    for _ in range(args.repeats):
        for way, fn in WAYS.items():
            best[way] = min(best[way], cpu_seconds(lambda: fn(x, y)))
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "x.npy", x.numpy())
        np.save(Path(folder) / "y.npy", y.numpy())
        growth = {way: peak_growth(way, Path(folder), args.threads) for way in ("one Gram", "two passes")}
    for way in WAYS:
        memory = f", peak memory +{growth[way] / data_bytes:.2f}x the data" if way in growth else ""
        print(f"{way:>10}: {best[way]:7.3f} CPU s = {best[way] / best['gemm']:.2f}x the GEMM{memory}")
    one = dataset_properties(x, y, m=1000, k=20)
    kf, d = label_sharpness(x, y, m=1000), intrinsic_dimension(x, "mle", k=20)
    print(f"agree: K_F {float(one.label_sharpness):.6e} vs {float(kf):.6e} (equal: {one.label_sharpness == kf}); "
          f"d_data {float(one.d_data):.7f} vs {float(d):.7f} (relative {abs(float(one.d_data) / float(d) - 1):.1e})")


if __name__ == "__main__":
    main()
