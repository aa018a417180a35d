"""K_F and d_data of the exact training set, recorded with the run (paper §2.1, §2.2).

At ``on_fit_start`` (after the datamodule is set up, so its training indices are final) the
callback asks the datamodule for ``dataset_properties(m, k, estimator, kf_mode)`` (cached by the
data layer under the preprocessing spec and the training set's fingerprint), and puts them into

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
from lightning.pytorch.callbacks import Callback

from lightning_dims.callbacks.loggers import log_hyperparams, log_metrics
from lightning_dims.data.measurement import d_data_options
from lightning_dims.data.property_report import PropertyReport
from lightning_dims.records.contributions import RecordContributor
from lightning_dims.tracking.names import (
    D_DATA,
    LABEL_SHARPNESS,
    LOG_N_OVER_D_DATA,
)
from lightning_dims.tracking.summary import update_wandb_summary

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


class DataPropertiesCallback(Callback, RecordContributor):
    """Records K_F and d_data of the training set at the start of fit.

    Args:
        m: images sampled for K_F (paper: 1000).
        k: MLE neighbours for d_data (paper: 20).
        estimator: ``"mle"`` (paper's d_data) or ``"twonn"``.
        kf_mode: ``"exhaustive"`` (all cross-label pairs among the m images) or ``"paper"``
            (the authors' 2,000 sampled pairs).
        estimator_options: further options of the d_data estimator (e.g. ``{"unbiased": false}``).
    """

    def __init__(
        self,
        m: int = 1000,
        k: int = 20,
        estimator: Literal["mle", "twonn"] = "mle",
        kf_mode: Literal["exhaustive", "paper"] = "exhaustive",
        estimator_options: dict | None = None,
    ):
        if m < 2:
            raise ValueError(f"m must be at least 2 images, got {m}")
        self.m = m
        self.k = k
        self.estimator = estimator
        self.kf_mode = kf_mode
        self.estimator_options = dict(estimator_options or {})
        d_data_options(estimator, k, self.estimator_options)  # unknown options fail now, not at fit start
        self.properties: dict | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not callable(getattr(datamodule, "dataset_properties", None)):
            raise TypeError(
                "DataPropertiesCallback needs a datamodule with dataset_properties(m, k, estimator, kf_mode), "
                f"such as lightning_dims.data.DimsDataModule; the trainer has {type(datamodule).__name__}"
            )
        properties = None
        if trainer.global_rank == 0:
            asked = {"m": self.m, "k": self.k, "estimator": self.estimator, "kf_mode": self.kf_mode}
            if self.estimator_options:
                asked["estimator_options"] = self.estimator_options
            report = datamodule.dataset_properties(**asked)
            properties = report.to_json() if isinstance(report, PropertyReport) else dict(report)
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
