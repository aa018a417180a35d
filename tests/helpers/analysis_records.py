"""Results records generated from known laws, for the analysis tests.

``law_record`` makes a finished record whose test loss obeys ``L = K_F * e^a * N^(-1/d)`` exactly
(times ``exp(noise)``), so a task's exponent is ``1/d``, ``alpha`` against ``1/d`` has slope 1 and
intercept 0, and at equal d the loss at one N rises with slope 1 in ``log K_F``.
"""

from __future__ import annotations

import math

SPEC = "32px-1ch-max255"


def law_record(
    run_id: str,
    dataset: str,
    domain: str,
    n: int,
    d: float,
    k_f: float,
    *,
    a: float = 8.0,
    noise: float = 0.0,
    classes: list[int] | None = None,
    options: dict | None = None,
    seed: int = 0,
    m: int | None = None,
    penalty: float | None = None,
    d_repr: dict | None = None,
    acc: float = 0.9,
    auroc: float = 0.95,
    best_loss: float | None = None,
    spec: str = SPEC,
    status: str = "finished",
    loss: float | None = None,
) -> dict:
    """A record dict as ``lightning-dims fit`` writes it (fields the analysis reads)."""
    if loss is None:
        loss = math.exp(math.log(k_f) + a - math.log(n) / d + noise)
    record = {
        "run_id": run_id, "status": status, "dataset": dataset, "domain": domain, "classes": classes or [0, 1],
        "arch": "resnet18", "n_train": n, "seed": seed, "preprocessing": {"key": spec},
        "label_sharpness": k_f, "d_data": d, "test": {"loss": loss, "acc": acc, "auroc": auroc},
        "test_best": None if best_loss is None else {"loss": best_loss, "acc": acc, "auroc": auroc},
        "d_repr": d_repr if d_repr is not None else {"layer4": {"twonn": 0.6 * d}, "avgpool": {"twonn": 0.5 * d}},
        "extra": {"data": {"options": options or {}},
                  "data_properties": {"m": m if m is not None else min(1000, n), "options": options or {}},
                  "d_repr_details": {"source": "val"}},
    }
    if penalty is not None:
        record["fgsm"] = {"2.0": {"clean_loss": loss, "attacked_loss": loss + penalty, "loss_penalty": penalty,
                                  "clean_acc": acc, "attacked_acc": acc - 0.2, "acc_penalty": 0.2}}
    return record
