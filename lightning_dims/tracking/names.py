"""The W&B names of a run's paper quantities: one list, for the code that logs them and the dashboards.

No dots and nothing that depends on the architecture or the preprocessing spec, so one panel or
filter works over a whole sweep (design.md, "W&B names"; ResNet ``layer4`` and VGG ``classifier.3``
are both ``penultimate``, eps is a fraction of the intensity range):

* summary and history: ``data/label_sharpness`` (K_F, 1/intensity units), ``data/d_data``,
  ``data/log_n_over_d_data`` (``ln N / d_data``); ``d_repr/penultimate/<estimator>`` (the paper's
  layer of every arch) and ``d_repr/<layer>/<estimator>`` for the other layers (dots in layer
  names as ``_``), the table ``d_repr/table`` over epochs; ``fgsm/<field>`` at the primary (first)
  eps and every eps in the table ``fgsm/table`` (``pgd/...`` alike); ``test/<metric>`` (final
  weights), ``test_best/<metric>`` (best-validation weights), ``val/loss`` (summarised as its
  minimum); all against ``trainer/global_step`` (Lightning's step key);
* flat config: :data:`CONFIG_KEYS`.

Units as in the results record (:mod:`lightning_dims.records.schema`): losses in nats per image,
accuracies in [0, 1]. The results record keeps its own schema.
"""

from __future__ import annotations

import re

__all__ = [
    "CONFIG_KEYS",
    "D_DATA",
    "EVAL_FIELDS",
    "FGSM_FIELDS",
    "LABEL_SHARPNESS",
    "LOG_N_OVER_D_DATA",
    "PENULTIMATE",
    "STEP",
    "VAL_LOSS",
    "attack",
    "d_repr",
    "fgsm",
    "safe_name",
    "split_metric",
    "test",
]

PENULTIMATE = "penultimate"
"""The layer alias of the paper's penultimate layer in ``d_repr/<layer>/<estimator>``."""

LABEL_SHARPNESS = "data/label_sharpness"
D_DATA = "data/d_data"
LOG_N_OVER_D_DATA = "data/log_n_over_d_data"
VAL_LOSS = "val/loss"
STEP = "trainer/global_step"
"""The x key Lightning's ``WandbLogger`` logs every metric against."""

FGSM_FIELDS = ("loss_penalty", "clean_loss", "attacked_loss", "attacked_acc", "clean_acc", "acc_penalty")
"""Attack quantities logged at the primary eps (the first of the callback's ``eps``)."""

EVAL_FIELDS = ("loss", "acc", "auroc")

CONFIG_KEYS = ("dataset", "task", "domain", "arch", "n_train", "seed", "spec", "lr", "epochs", "config_hash")
"""Flat W&B config keys: dataset name, task (dataset, class pair and non-default options, e.g.
``mnist-3v8``), domain (natural/medical), architecture, N (training images), seed, preprocessing
spec key, the effective learning rate, epochs, and the run's config hash."""


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``_`` (``classifier.3`` -> ``classifier_3``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))


def d_repr(estimator: str, layer: str = PENULTIMATE) -> str:
    """``d_repr/<layer>/<estimator>``: intrinsic dimension of ``layer``'s activations."""
    return f"d_repr/{safe_name(layer)}/{estimator}"


def attack(field: str, name: str = "fgsm") -> str:
    """``<attack>/<field>`` at the primary eps; ``field`` one of :data:`FGSM_FIELDS`."""
    if field not in FGSM_FIELDS:
        raise ValueError(f"unknown attack field {field!r}: use one of {', '.join(FGSM_FIELDS)}")
    return f"{name}/{field}"


def fgsm(field: str) -> str:
    """``fgsm/<field>`` at the primary eps."""
    return attack(field, "fgsm")


def split_metric(prefix: str, field: str) -> str:
    """``<prefix>/<field>``: a metric of one split (``train``, ``val``, ``test``, ``test_best``), e.g. ``val/loss``;
    the names :class:`~lightning_dims.models.ImageClassifier` logs."""
    return f"{safe_name(prefix)}/{safe_name(field)}"


def test(field: str = "loss", best: bool = False) -> str:
    """``test/<field>`` (final weights) or ``test_best/<field>`` (best-validation weights)."""
    if field not in EVAL_FIELDS:
        raise ValueError(f"unknown evaluation field {field!r}: use one of {', '.join(EVAL_FIELDS)}")
    return split_metric("test_best" if best else "test", field)
