"""K_F and d_data of the exact training set, recorded with the run (paper §2.1, §2.2).

At ``on_fit_start`` (after the datamodule is set up, so its training indices are final) the
callback asks a lightning_dims datamodule for ``dataset_properties(m, k, estimator, kf_mode)``
(cached by the data layer under the preprocessing spec and the training set's fingerprint). With
any other data (a DataModule of your own, loaders passed to ``trainer.fit``, or ``dataloader=``)
it reads the whole training set once, in order, from the training loader's dataset (images and
labels found as :class:`~lightning_dims.network.batches.BatchFormat` finds them) and computes
both from one Gram (:func:`~lightning_dims.properties.dataset_properties`; memory: the training
set as float32). Then it puts them into

* the loggers' run configuration (``data_properties``: the whole report as JSON, spec included;
  a datamodule of your own may return a plain mapping with at least ``label_sharpness`` and ``d_data``),
* the metrics and W&B summary ``data/label_sharpness`` (K_F, inverse intensity units),
  ``data/d_data`` (unitless) and ``data/log_n_over_d_data`` (``log N / d_data``, N training images),
* the results record (``label_sharpness``, ``d_data``, ``data_properties``).

Under DDP rank 0 computes and broadcasts, so every rank records the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_dims.callbacks.loggers import log_hyperparams, log_metrics
from lightning_dims.callbacks.sampling import find_loader, first_batch, subset_loader
from lightning_dims.data.measurement import LABEL_CONFLICT_EXAMPLES, d_data_options
from lightning_dims.data.property_report import PropertyReport
from lightning_dims.network.batches import BatchFormat, Locator
from lightning_dims.properties import dataset_properties, intrinsic_dimension, label_conflicts, label_sharpness
from lightning_dims.records.contributions import RecordContributor
from lightning_dims.tracking.names import (
    D_DATA,
    LABEL_SHARPNESS,
    LOG_N_OVER_D_DATA,
)
from lightning_dims.tracking.summary import update_wandb_summary

__all__ = ["DataPropertiesCallback", "loader_properties", "reported_number"]

REPORTED = ("label_sharpness", "d_data")


def reported_number(properties: Mapping[str, object], name: str) -> float:
    """The float value of ``properties[name]``: a number, or a result dict/object with its ``value``/``dimension``."""
    if name not in properties:
        raise KeyError(f"dataset_properties() returned no {name!r} (keys: {sorted(properties)})")
    value = properties[name]
    if isinstance(value, Mapping):
        value = next((value[key] for key in ("value", name, "dimension") if key in value), value)
    if not isinstance(value, Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"dataset_properties()[{name!r}] is {type(value).__name__}, not a number") from None
    return float(value)


def loader_images(loader: DataLoader, batch_format: BatchFormat) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (N, ...) and labels (N,) of ``loader``'s dataset, in order, on the CPU."""
    images, labels = [], []
    with torch.random.fork_rng(devices=[]):  # a DataLoader iterator draws its seed from the global stream
        for batch in subset_loader(loader, torch.arange(len(loader.dataset))):
            images.append(batch_format.images(batch).detach().cpu())
            labels.append(batch_format.labels(batch).detach().cpu().reshape(-1))
    return torch.cat(images), torch.cat(labels)


def loader_properties(
    loader: DataLoader,
    m: int = 1000,
    estimator: str = "mle",
    kf_mode: str = "exhaustive",
    *,
    estimator_options: dict | None = None,
    batch_format: BatchFormat = BatchFormat(),
    seed: int = 0,
) -> dict:
    """K_F and d_data of ``loader``'s whole dataset as the record's ``data_properties`` (a plain dict).

    Exhaustive K_F comes with d_data from one Gram (:func:`dataset_properties`); ``kf_mode="paper"``
    takes the authors' 2,000 sampled pairs (:func:`label_sharpness`) beside :func:`intrinsic_dimension`.
    Identical images under two labels are counted (``label_conflicts``) as a datamodule's report does.
    """
    x, y = loader_images(loader, batch_format)
    options = dict(estimator_options or {})
    if kf_mode == "exhaustive":
        props = dataset_properties(x, y, m=m, estimator=estimator, seed=seed, **options)
        sharpness, dimension = props.label_sharpness, props.d_data
    else:
        sharpness = label_sharpness(x, y, m=m, mode=kf_mode, seed=seed)
        dimension = intrinsic_dimension(x, estimator, **options)
    conflicts = [list(pair) for pair in label_conflicts(x, y)]
    return {
        "n": int(x.shape[0]),
        "label_sharpness": float(sharpness),
        "d_data": float(dimension),
        "estimator": dimension.estimator,
        "k": dimension.k,
        "estimator_options": options,
        "m": sharpness.m,
        "kf_mode": kf_mode,
        "image_shape": list(x.shape[1:]),
        "label_sharpness_detail": sharpness.to_dict(),
        "d_data_detail": dimension.to_dict(),
        "label_conflicts": {"count": len(conflicts), "examples": conflicts[:LABEL_CONFLICT_EXAMPLES]},
    }


class DataPropertiesCallback(Callback, RecordContributor):
    """Records K_F and d_data of the training set at the start of fit.

    Args:
        m: images sampled for K_F (paper: 1000).
        k: MLE neighbours for d_data (paper: 20).
        estimator: ``"mle"`` (paper's d_data) or ``"twonn"``.
        kf_mode: ``"exhaustive"`` (all cross-label pairs among the m images) or ``"paper"``
            (the authors' 2,000 sampled pairs).
        estimator_options: further options of the d_data estimator (e.g. ``{"unbiased": false}``).
        dataloader: the training data to measure; None: a lightning_dims datamodule's own
            (cached) measurement, else the training loader wherever Lightning holds it (a
            DataModule's ``train_dataloader()``, loaders passed to ``trainer.fit``).
        inputs, targets: where the images and labels are in a batch (None: items 0 and 1, or a
            dict's ``image``/``x``/... and ``label``/``y``/... keys; a key, position or function).
        seed: seed of K_F's sample of ``m`` images (a lightning_dims datamodule uses its task's seed).

    Raises:
        ValueError, TypeError: at setup, when there is no training data or its first batch has no
            images or labels.

    Example::

        trainer = Trainer(callbacks=[DataPropertiesCallback(m=1000)])
        trainer.fit(model, train_loader, val_loader)   # K_F and d_data of train_loader's dataset
    """

    def __init__(
        self,
        m: int = 1000,
        k: int = 20,
        estimator: Literal["mle", "twonn"] = "mle",
        kf_mode: Literal["exhaustive", "paper"] = "exhaustive",
        estimator_options: dict | None = None,
        dataloader: DataLoader | None = None,
        inputs: Locator = None,
        targets: Locator = None,
        seed: int = 0,
    ):
        if m < 2:
            raise ValueError(f"m must be at least 2 images, got {m}")
        self.m = m
        self.k = k
        self.estimator = estimator
        self.kf_mode = kf_mode
        self.estimator_options = dict(estimator_options or {})
        d_data_options(estimator, k, self.estimator_options)  # unknown options fail now, not at fit start
        self.dataloader = dataloader
        self.batch_format = BatchFormat(inputs=inputs, targets=targets)
        self.seed = seed
        self.properties: dict | None = None

    def own_measurement(self, trainer: pl.Trainer) -> bool:
        """Whether the datamodule measures itself (``dataset_properties()``, a lightning_dims datamodule)."""
        return self.dataloader is None and callable(getattr(trainer.datamodule, "dataset_properties", None))

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Find the training data and check its first batch now, so a mismatch fails before training."""
        if stage != "fit" or self.own_measurement(trainer):
            return
        loader = find_loader(trainer, "train", self.dataloader, owner="DataPropertiesCallback")
        batch = first_batch(loader)
        self.batch_format.images(batch)
        self.batch_format.labels(batch)

    def measure(self, trainer: pl.Trainer) -> dict:
        """The training set's properties as a plain dict (the datamodule's report, or :func:`loader_properties`)."""
        if not self.own_measurement(trainer):
            loader = find_loader(trainer, "train", self.dataloader, owner="DataPropertiesCallback")
            options = d_data_options(self.estimator, self.k, self.estimator_options)
            return loader_properties(
                loader, self.m, self.estimator, self.kf_mode, estimator_options=options, batch_format=self.batch_format, seed=self.seed
            )
        asked = {"m": self.m, "k": self.k, "estimator": self.estimator, "kf_mode": self.kf_mode}
        if self.estimator_options:
            asked["estimator_options"] = self.estimator_options
        report = trainer.datamodule.dataset_properties(**asked)
        return report.to_json() if isinstance(report, PropertyReport) else dict(report)

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        properties = self.measure(trainer) if trainer.global_rank == 0 else None
        if trainer.world_size > 1:
            properties = trainer.strategy.broadcast(properties, src=0)
        self.properties = properties
        numbers = {name: reported_number(properties, name) for name in REPORTED}
        for name, value in numbers.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"dataset_properties() gave {name} = {value}; expected a positive finite number")
        log_hyperparams(trainer, {"data_properties": properties})
        metrics = {LABEL_SHARPNESS: numbers["label_sharpness"], D_DATA: numbers["d_data"]}
        n = properties.get("n")
        if isinstance(n, Real) and n > 1:
            metrics[LOG_N_OVER_D_DATA] = math.log(n) / numbers["d_data"]  # the law's x: log N / d_data
        log_metrics(trainer, metrics)
        update_wandb_summary(trainer, metrics)

    def results_record_fields(self) -> dict:
        """``{"label_sharpness": K_F, "d_data": d, "data_properties": {...}, "data_warnings": {...}}``.

        ``data_warnings`` counts identical training images filed under two labels
        (``label_conflicts``); empty before fit start.
        """
        if self.properties is None:
            return {}
        conflicts = self.properties.get("label_conflicts") or {"count": 0, "examples": []}
        return {name: reported_number(self.properties, name) for name in REPORTED} | {
            "data_properties": self.properties,
            "data_warnings": {"label_conflicts": conflicts},
        }
