"""The names the paper's quantities carry in W&B: no dots, nothing that depends on the arch or the spec.

One W&B panel must serve a whole sweep, so a quantity has one name whatever the architecture
(ResNet ``layer4`` and VGG ``classifier.3`` are both ``penultimate``), the preprocessing (eps is
a fraction of the intensity range, not ``2.0`` under max255 and ``0.0078...`` under max1) or the
W&B filter syntax (dots separate nested keys there). The results record keeps its own schema.

Summary/metrics:

* ``data/label_sharpness`` (K_F), ``data/d_data``, ``data/log_n_over_d_data`` (``log N / d_data``);
* ``d_repr/penultimate/<estimator>`` (the paper's layer of each arch) and ``d_repr/<layer>/<estimator>``
  for the other layers (dots in layer names become ``_``), ``d_repr/table`` over epochs;
* ``fgsm/{loss_penalty,clean_loss,attacked_loss,attacked_acc,clean_acc,acc_penalty}`` at the primary
  (first) eps, every eps in the table ``fgsm/table``; ``pgd/...`` alike;
* ``test/*``: the final weights; ``test_best/*``: the best-validation weights; ``val/loss``
  summarised as its minimum.

Config (flat): :data:`CONFIG_KEYS`.
"""

from __future__ import annotations

import re

DATA_LABEL_SHARPNESS = "data/label_sharpness"
DATA_D_DATA = "data/d_data"
DATA_LOG_N_OVER_D_DATA = "data/log_n_over_d_data"
PENULTIMATE = "penultimate"
ATTACK_METRICS = ("loss_penalty", "clean_loss", "attacked_loss", "attacked_acc", "clean_acc", "acc_penalty")
CONFIG_KEYS = ("dataset", "task", "domain", "arch", "n_train", "seed", "spec", "lr", "epochs", "config_hash")
"""Flat W&B config keys every ``lightning-dims fit`` run sets (one meaning each, agent or not)."""


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``_`` (``classifier.3`` -> ``classifier_3``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))


def d_repr_key(layer: str, estimator: str) -> str:
    return f"d_repr/{safe_name(layer)}/{estimator}"


def attack_key(attack: str, metric: str) -> str:
    return f"{attack}/{metric}"
