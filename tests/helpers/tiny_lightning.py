"""A tiny classifier and datamodule on scikit-learn's digits for the callback tests.

The network names its blocks like torchvision's ResNet (``layer4``, ``avgpool``, ``fc``) so the
callbacks' default layers apply to it; the datamodule has the ``spec``/``dataset_properties``
interface of ``lightning_dims.data.DimsDataModule``. Images are scaled so each maximum is 255.
"""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_dims.properties import intrinsic_dimension, label_sharpness


def digits_tensors(classes: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as float32 (N, 1, 8, 8) images with per-image maximum 255, and int64 labels 0..C-1."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target, dtype=torch.int64)
    if classes is not None:
        keep = torch.isin(y, torch.tensor(classes))
        x, y = x[keep], torch.searchsorted(torch.tensor(sorted(classes)), y[keep])
    x = x * (255.0 / x.flatten(1).amax(dim=1))[:, None, None, None]
    return x.clamp(0.0, 255.0), y


class TinyResNetLike(nn.Module):
    """conv stem -> ``layer4`` (conv block) -> ``avgpool`` (to 2x2) -> ``fc``: ResNet's module names, 8x8 inputs."""

    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.layer4 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(width * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.layer4(self.stem(x / 255.0))), 1))


class LitClassifier(pl.LightningModule):
    """Cross-entropy classifier around ``self.model`` (the layout of lightning_dims' ImageClassifier)."""

    def __init__(self, network: nn.Module | None = None, lr: float = 1e-2):
        super().__init__()
        self.model = network if network is not None else TinyResNetLike()
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class TensorDataModule(pl.LightningDataModule):
    """Train/val/test splits of given tensors, a ``max255`` spec, and real K_F / d_data of the train split."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, train: int, val: int, test: int, batch_size: int = 64):
        super().__init__()
        if train + val + test > len(x):
            raise ValueError(f"{train + val + test} samples asked, {len(x)} available")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        splits = torch.split(order[: train + val + test], [train, val, test])
        self.datasets = {name: TensorDataset(x[idx], y[idx]) for name, idx in zip(("train", "val", "test"), splits)}
        self.batch_size = batch_size
        self.spec = SimpleNamespace(intensity="max255", key=lambda: "8px-1ch-max255")
        self.property_calls = 0

    def train_dataloader(self):
        return DataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.datasets["val"], batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.datasets["test"], batch_size=self.batch_size)

    def dataset_properties(self, m=1000, k=20, estimator="mle", kf_mode="exhaustive") -> dict:
        self.property_calls += 1
        x, y = self.datasets["train"].tensors
        return {
            "label_sharpness": float(label_sharpness(x, y, m=m, mode=kf_mode)),
            "d_data": float(intrinsic_dimension(x, estimator=estimator, **({"k": k} if estimator == "mle" else {}))),
            "preprocessing": {"size": 8, "channels": 1, "intensity": "max255"},
            "fingerprint": "tiny-digits",
            "cached": False,
        }


def digits_datamodule(train: int = 600, val: int = 300, test: int = 300, batch_size: int = 64) -> TensorDataModule:
    x, y = digits_tensors()
    return TensorDataModule(x, y, train, val, test, batch_size=batch_size)


def quiet_trainer(**kwargs) -> pl.Trainer:
    """A CPU trainer without checkpoints, progress bars or model summaries."""
    options = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(**options)
