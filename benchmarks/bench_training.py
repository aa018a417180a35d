"""Training throughput of ``lightning-dims fit`` against a plain PyTorch loop, in one run.

    python benchmarks/bench_training.py [--size 32] [--train-size 600] [--epochs 4] [--repeats 3]

Both train the same network (``create_model("resnet18", 1 channel, 10 logits)``, random init)
with the same optimiser (Adam, lr 1e-3, weight decay 1e-4), on the same batches: the training
DataLoader of one ``DimsDataModule`` (embedded digits, all 10 classes, per-image max 255, resized
to ``--size`` px, batch 40 as the paper's ResNet-18 preset), in this process, with torch's default
threads.

* lightning: ``lightning_dims.commands.fit.main([...])``, the real command with its defaults
  (progress bar, torchmetrics accuracy and loss, logging every 50 steps to W&B offline), with no
  validation set; a callback times each training epoch from ``on_train_epoch_start`` to
  ``on_train_epoch_end`` (data loading, forward, backward, step, metrics, logging, progress bar);
* plain: ``for x, y in loader: zero_grad; cross_entropy(model(x), y).backward(); step`` timed per epoch.

The first epoch of each run is warm-up and dropped. Throughput is training images per second of
the fastest remaining epoch (best-of, the least disturbed by other jobs on a shared machine; the
median is printed too). Runs alternate (lightning, plain, lightning, plain, ...) so a change in
machine load hits both. Prints both, their ratio and Lightning's overhead in percent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback


class EpochTimer(Callback):
    """Appends each training epoch's seconds to the JSON list in ``out``."""

    def __init__(self, out: str):
        self.out = out
        self.started = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self.started
        path = Path(self.out)
        times = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(times + [seconds]))


def data_kwargs(args: argparse.Namespace) -> dict:
    return {
        "name": "digits",
        "classes": list(range(10)),
        "train_size": args.train_size,
        "val_size": 0,
        "test_size": args.test_size,
        "size": args.size,
        "batch_size": args.batch_size,
        "seed": 0,
    }


def lightning_epochs(args: argparse.Namespace, workdir: Path, repeat: int) -> list[float]:
    from lightning_dims.commands.fit import main

    out = workdir / f"lightning-{repeat}.json"
    timer = json.dumps([{"class_path": "bench_training.EpochTimer", "init_args": {"out": str(out)}}])
    argv = ["--model.arch", "resnet18", "--data_properties", "false", "--trainer.callbacks", timer]
    argv += [f"--data.{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in data_kwargs(args).items()]
    argv += ["--trainer.max_epochs", str(args.epochs), "--run_dir", str(workdir / "runs")]
    argv += ["--run_id", f"bench-{repeat}", "--trainer.accelerator", "cpu"]
    if main(argv) != 0:
        raise SystemExit("lightning-dims fit failed")
    return json.loads(out.read_text())


def plain_epochs(args: argparse.Namespace) -> list[float]:
    from lightning_dims.data import DimsDataModule
    from lightning_dims.models import create_model

    torch.manual_seed(0)
    datamodule = DimsDataModule(**data_kwargs(args))
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    model = create_model("resnet18", in_chans=datamodule.in_chans, num_classes=datamodule.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    times = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--train-size", type=int, default=600, help="training images (10 balanced classes)")
    parser.add_argument("--test-size", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=40, help="paper preset for ResNet-18")
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first is warm-up")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")

    lightning, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("WANDB_DIR", tmp)
        os.environ.setdefault("LIGHTNING_DIMS_CACHE", str(Path(tmp) / "cache"))
        for repeat in range(args.repeats):
            lightning += lightning_epochs(args, Path(tmp), repeat)[1:]
            plain += plain_epochs(args)[1:]

    images = args.train_size
    rates = {name: (images / min(times), images / statistics.median(times)) for name, times in (("lightning", lightning), ("plain", plain))}
    print(f"ResNet-18, {images} digits images at {args.size} px, batch {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"epoch seconds  lightning: {', '.join(f'{t:.2f}' for t in lightning)}")
    print(f"epoch seconds  plain:     {', '.join(f'{t:.2f}' for t in plain)}")
    print(f"lightning-dims fit: {rates['lightning'][0]:.1f} images/s best epoch ({rates['lightning'][1]:.1f} median)")
    print(f"plain PyTorch loop: {rates['plain'][0]:.1f} images/s best epoch ({rates['plain'][1]:.1f} median)")
    for label, index in (("best", 0), ("median", 1)):
        ratio = rates["lightning"][index] / rates["plain"][index]
        print(f"ratio lightning / plain ({label}): {ratio:.3f}; overhead {100 * (1 / ratio - 1):+.1f}%")


if __name__ == "__main__":
    main()
