"""The W&B names of a run's paper quantities: one list, for the code that logs them and the dashboards.

No dots and nothing that depends on the architecture or the preprocessing spec, so one panel or
filter works over a whole sweep (design.md, "W&B names"):

* summary: ``data/label_sharpness`` (K_F, 1/intensity units), ``data/d_data``,
  ``data/log_n_over_d_data`` (``ln N / d_data``), ``d_repr/penultimate/<estimator>`` (the paper's
  layer of every arch: ResNet ``layer4``, VGG ``classifier.3``), ``fgsm/<field>`` at the primary
  eps, ``test/<metric>`` (final weights), ``test_best/<metric>`` (best-val weights), ``val/loss``;
* history: ``d_repr/penultimate/<estimator>`` against ``trainer/global_step`` (Lightning's step key);
* flat config: :data:`CONFIG_KEYS`.

Units as in the results record (:mod:`lightning_dims.records.schema`): losses in nats per image,
accuracies in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PENULTIMATE = "penultimate"
"""The layer alias of the paper's penultimate layer in ``d_repr/<layer>/<estimator>``."""

LABEL_SHARPNESS = "data/label_sharpness"
D_DATA = "data/d_data"
LOG_N_OVER_D_DATA = "data/log_n_over_d_data"
VAL_LOSS = "val/loss"
STEP = "trainer/global_step"
"""The x key Lightning's ``WandbLogger`` logs every metric against."""

FGSM_FIELDS = ("loss_penalty", "clean_loss", "attacked_loss", "attacked_acc")
"""FGSM quantities summarised at the primary eps (the first of the callback's ``eps``)."""

EVAL_FIELDS = ("loss", "acc", "auroc")

CONFIG_KEYS = ("dataset", "task", "domain", "arch", "n_train", "seed", "spec", "lr", "epochs", "config_hash")
"""Flat W&B config keys: dataset name, task (dataset and class pair), domain (natural/medical),
architecture, N (training images), seed, preprocessing spec key, the effective learning rate,
epochs, and the run's config hash."""


def d_repr(estimator: str, layer: str = PENULTIMATE) -> str:
    """``d_repr/<layer>/<estimator>``: intrinsic dimension of ``layer``'s activations."""
    return f"d_repr/{layer}/{estimator}"


def fgsm(field: str) -> str:
    """``fgsm/<field>`` at the primary eps; ``field`` one of :data:`FGSM_FIELDS`."""
    if field not in FGSM_FIELDS:
        raise ValueError(f"unknown FGSM field {field!r}: use one of {', '.join(FGSM_FIELDS)}")
    return f"fgsm/{field}"


def test(field: str = "loss", best: bool = False) -> str:
    """``test/<field>`` (final weights) or ``test_best/<field>`` (best-validation weights)."""
    if field not in EVAL_FIELDS:
        raise ValueError(f"unknown evaluation field {field!r}: use one of {', '.join(EVAL_FIELDS)}")
    return f"{'test_best' if best else 'test'}/{field}"


def task_name(dataset: str, classes: list[int] | None) -> str:
    """The task of a run: ``<dataset>`` or ``<dataset>:<a>-<b>`` with its class pair (``digits:3-8``)."""
    return dataset if not classes else f"{dataset}:{'-'.join(str(c) for c in classes)}"


def log_n_over_d_data(n_train: int, d_data: float) -> float:
    """``ln N / d_data``: the law's abscissa (``log L`` is linear in it, slope -1 per unit of log K_F)."""
    return math.log(n_train) / d_data


def design_config(record: Any) -> dict[str, Any]:
    """The flat config (:data:`CONFIG_KEYS`) of a results record."""
    return {
        "dataset": record.dataset,
        "task": task_name(record.dataset, record.classes),
        "domain": record.domain,
        "arch": record.arch,
        "n_train": record.n_train,
        "seed": record.seed,
        "spec": record.preprocessing.get("key"),
        "lr": record.hparams.get("lr"),
        "epochs": record.hparams.get("max_epochs"),
        "config_hash": record.config_hash,
    }


def design_aliases(metrics: Mapping[str, float], feature_layer: str | None, n_train: int | None) -> dict[str, float]:
    """The design's names for callback metrics logged under layer- and eps-dependent names.

    ``d_repr/<feature_layer>/<est>`` -> ``d_repr/penultimate/<est>``; ``fgsm/<eps>/<field>`` at the
    first eps in ``metrics`` -> ``fgsm/<field>``; ``data/d_data`` -> also ``data/log_n_over_d_data``.
    """
    aliases: dict[str, float] = {}
    primary_eps = None
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "d_repr" and feature_layer is not None and parts[1] == feature_layer:
            aliases[d_repr(parts[2])] = value
        elif len(parts) == 3 and parts[0] == "fgsm" and parts[2] in FGSM_FIELDS:
            primary_eps = parts[1] if primary_eps is None else primary_eps
            if parts[1] == primary_eps:
                aliases[fgsm(parts[2])] = value
        elif key == D_DATA and n_train:
            aliases[LOG_N_OVER_D_DATA] = log_n_over_d_data(n_train, value)
    return aliases
