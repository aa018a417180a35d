"""The training data path, before and after it became device-resident, in one process on the same images.

    python benchmarks/bench_data_path.py [--n 1750] [--size 224] [--epochs 3] [--png-side 320] [--cpu-epoch]

* before: the per-batch path ``DimsDataModule`` had until the resident one replaced it: a
  ``DataLoader`` over the split's pool indices whose ``collate_fn`` reads the batch's images (for a
  file dataset: decodes the files) and preprocesses them (resize to ``--size``, per-image max 255),
  every epoch, no worker processes (the default ``num_workers=0``); the same sampler.
* after: ``DimsDataModule.train_dataloader()`` as it is now: the split decoded and preprocessed once
  (timed separately, as ``setup``; files on every usable core), then each epoch is a permutation
  and index gathers from one tensor (here in CPU memory: there is no GPU on the benchmark machine).
  Its floor is memory bandwidth, so the time of one plain copy of the split's tensor is printed too.

Datasets: MNIST (``$LIGHTNING_DIMS_DATA``; 28 x 28 in one array, resized to 224) and a folder of
``--n + 10`` 8-bit gray PNGs of ``--png-side`` pixels (MNIST digits upsampled and written once to a
temporary folder, a typical size of exported radiographs). Batch 40 (the paper's ResNet-18 batch).
Images per second are of the best epoch (best-of, the least disturbed on a shared machine); the
two paths' epochs are timed in turns.

``--cpu-epoch``: also the time of one ResNet-18 training epoch at 64 px on the CPU
(``--cpu-epoch-n`` MNIST images, batch 40, Adam), with the old and the new path feeding it, and the
images/s of the CPU shared by 2 runs of 1 thread each (``sweep --workers 2``) against 1 run of 2
threads. Epochs of the two paths are timed in turns (before, after, before, ...); best of each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightning_dims.data import DimsDataModule
from lightning_dims.data.decode import preprocess_images

BATCH = 40


def per_batch_loader(datamodule: DimsDataModule) -> torch.utils.data.DataLoader:
    """The path before: read and preprocess each batch in the loader's collate function, every epoch."""
    from torch.utils.data import DataLoader

    from lightning_dims.data.datamodule import EpochShuffleSampler

    task = datamodule.task
    pool, indices, labels, spec = task.pool(), task.indices("train"), task.labels("train"), task.spec

    class SplitImages(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(indices)

        def __getitem__(self, item: int):
            return pool.read([indices[item]])[0], labels[item]

    def collate(items):
        images, batch_labels = zip(*items)
        return preprocess_images(list(images), spec), torch.stack(batch_labels)

    dataset = SplitImages()
    return DataLoader(dataset, batch_size=datamodule.batch_size, sampler=EpochShuffleSampler(dataset, datamodule.seed), collate_fn=collate)


def copy_seconds(images: torch.Tensor, repeats: int = 3) -> float:
    """Best time to copy ``images`` once: the floor of any epoch that touches every byte."""
    target = torch.empty_like(images)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(images)
        best = min(best, time.perf_counter() - started)
    return best


def mnist_module(args, **overrides) -> DimsDataModule:
    kwargs = dict(name="mnist", classes=[3, 8], train_size=args.n, val_size=0, test_size=10, size=args.size, batch_size=BATCH)
    return DimsDataModule(**(kwargs | overrides))


def png_folder(root: Path, args) -> Path:
    """``--n + 10`` MNIST 3s and 8s as ``--png-side`` px 8-bit PNGs in class folders."""
    from PIL import Image
    from torchvision.datasets import MNIST

    mnist = MNIST(os.environ["LIGHTNING_DIMS_DATA"], train=True, download=False)
    count = args.n // 2 + 5
    for digit in (3, 8):
        (root / str(digit)).mkdir(parents=True)
        picked = mnist.data[mnist.targets == digit][:count]
        big = F.interpolate(picked[:, None].float(), size=(args.png_side, args.png_side), mode="bilinear")
        for index, image in enumerate(big[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()):
            Image.fromarray(image).save(root / str(digit) / f"{index:05d}.png")
    return root


def alternate(first, second, epochs: int, step=None) -> tuple[list[float], list[float]]:
    """Epoch seconds of two loaders timed in turns (first, second, first, ...), so a change in the
    machine's load hits both."""
    times: tuple[list[float], list[float]] = ([], [])
    for epoch in range(epochs):
        for loader, out in zip((first, second), times):
            out += epoch_seconds_at(loader, epoch, step)
    return times


def epoch_seconds_at(loader, epoch: int, step=None) -> list[float]:
    loader.sampler.set_epoch(epoch)
    started = time.perf_counter()
    for x, y in loader:
        if step is not None:
            step(x, y)
    return [time.perf_counter() - started]


def compare(name: str, make_module, args) -> dict:
    before_module = make_module()
    before_module.setup("fit")
    after_module = make_module()
    started = time.perf_counter()
    after_module.setup("fit")
    loader = after_module.train_dataloader()  # decodes and preprocesses the split once
    setup = time.perf_counter() - started
    before, after = alternate(per_batch_loader(before_module), loader, args.epochs)
    n = len(loader.dataset)
    row = {"name": name, "n": n, "before": n / min(before), "after": n / min(after), "setup": setup}
    row["copy"] = n / copy_seconds(loader.dataset.images)
    row["amortised"] = n * 100 / (setup + 100 * min(after))  # 100 epochs, setup included
    print(
        f"{name:<28} before {row['before']:>10,.0f} img/s   after {row['after']:>12,.0f} img/s "
        f"({row['after'] / row['before']:,.0f}x)   setup once {setup:.2f} s; over 100 epochs incl. setup "
        f"{row['amortised']:,.0f} img/s ({row['amortised'] / row['before']:.1f}x); copying the split's bytes once "
        f"(memory bandwidth floor) {row['copy']:,.0f} img/s",
        flush=True,
    )
    return row


def cpu_epoch(args) -> None:
    from lightning_dims.models.registry import create_model
    from lightning_dims.sweep.estimate import StepSetting, time_concurrently
    from lightning_dims.sweep.slots import Slot

    torch.manual_seed(0)
    model = create_model("resnet18", in_chans=1, num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step(x, y):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    module = mnist_module(args, size=64, train_size=args.cpu_epoch_n)
    module.setup("fit")
    old, new = alternate(per_batch_loader(module), module.train_dataloader(), 2, step)
    print(
        f"ResNet-18 epoch on the CPU, {args.cpu_epoch_n} MNIST images at 64 px, batch {BATCH}, {torch.get_num_threads()} "
        f"threads (2 epochs each, alternating; best): before {min(old):.1f} s, after {min(new):.1f} s "
        f"({min(old) / min(new):.2f}x)",
        flush=True,
    )
    setting = StepSetting("resnet18", BATCH, 64, 1, None, "cpu")
    cores = len(os.sched_getaffinity(0))
    one = sum(time_concurrently(setting, [Slot(None, cores)], args.steps))
    split = sum(time_concurrently(setting, [Slot(None, max(1, cores // 2))] * 2, args.steps))
    print(
        f"ResNet-18 training steps at 64 px on {cores} cores: 1 run x {cores} threads {one:.1f} img/s; "
        f"2 runs x {max(1, cores // 2)} thread(s) at once {split:.1f} img/s ({split / one:.2f}x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1750, help="training images (the paper's largest N)")
    parser.add_argument("--size", type=int, default=224, help="training image side in pixels")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per path (best counts)")
    parser.add_argument("--png-side", type=int, default=320, help="side of the PNG files")
    parser.add_argument("--cpu-epoch", action="store_true", help="also the ResNet-18 CPU epoch and --workers comparison")
    parser.add_argument("--cpu-epoch-n", type=int, default=500, help="training images of the CPU epoch (the paper's smallest N)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per process for --workers")
    args = parser.parse_args()
    if not os.environ.get("LIGHTNING_DIMS_DATA"):
        raise SystemExit("set LIGHTNING_DIMS_DATA to the folder with MNIST/raw (../shared/data)")
    print(f"data path, {args.n} training images at {args.size} px, batch {BATCH}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {len(os.sched_getaffinity(0))} cores; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    compare("MNIST (one array)", lambda: mnist_module(args), args)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("LIGHTNING_DIMS_CACHE", str(Path(tmp) / "cache"))
        root = png_folder(Path(tmp) / "pngs", args)
        files = sorted(root.rglob("*.png"))
        size_mb = sum(path.stat().st_size for path in files) / 1e6
        name = f"PNG folder ({args.png_side} px)"
        print(f"{len(files)} PNG files of {args.png_side} x {args.png_side}, {size_mb:.0f} MB", flush=True)
        compare(name, lambda: DimsDataModule(name="folder", data_root=str(root), train_size=args.n, val_size=0,
                                             test_size=10, size=args.size, batch_size=BATCH), args)  # fmt: skip
    if args.cpu_epoch:
        cpu_epoch(args)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
