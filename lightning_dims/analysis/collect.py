"""Results records to flat rows for the fits (one row per finished run).

A row holds ``run_id, dataset, domain, arch, train_size, seed, preprocessing, label_sharpness,
d_data, test_loss, test_acc`` and, when the run measured them, ``eps, loss_penalty,
acc_penalty`` (FGSM at one eps) and ``d_repr`` (one layer, one estimator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PREFERRED_REPR_ESTIMATORS = ("twonn", "mle")


def as_mapping(record: Any) -> Mapping[str, Any]:
    """A results record (pydantic model or already a dict) as a plain mapping."""
    return record.model_dump(mode="json") if hasattr(record, "model_dump") else record


def pick_fgsm(fgsm: Mapping[str, Mapping], eps: float | None) -> tuple[float | None, Mapping | None]:
    """The FGSM entry at ``eps`` (intensity units), or the smallest eps when ``eps`` is None."""
    if not fgsm:
        return None, None
    by_eps = {float(key): value for key, value in fgsm.items()}
    chosen = min(by_eps) if eps is None else min(by_eps, key=lambda e: abs(e - eps))
    if eps is not None and abs(chosen - eps) > 1e-9 * max(1.0, abs(eps)):
        return None, None
    return chosen, by_eps[chosen]


def pick_repr(d_repr: Mapping[str, Mapping[str, float | None]], layer: str | None) -> float | None:
    """d_repr of ``layer`` (default: the first layer recorded), preferring TwoNN as the paper did."""
    if not d_repr:
        return None
    values = d_repr.get(layer) if layer is not None else next(iter(d_repr.values()))
    if not values:
        return None
    for estimator in PREFERRED_REPR_ESTIMATORS:
        if values.get(estimator) is not None:
            return values[estimator]
    return next((v for v in values.values() if v is not None), None)


def rows_from_records(
    records: Iterable[Any], *, eps: float | None = None, repr_layer: str | None = None
) -> list[dict[str, Any]]:
    """One row per finished record (others are skipped)."""
    rows = []
    for record in map(as_mapping, records):
        if record.get("status") != "finished":
            continue
        test = record.get("test") or {}
        chosen_eps, attack = pick_fgsm(record.get("fgsm") or {}, eps)
        rows.append(
            {
                "run_id": record["run_id"],
                "dataset": record["dataset"],
                "domain": record.get("domain") or "unknown",
                "arch": record["arch"],
                "train_size": record["n_train"],
                "seed": record.get("seed"),
                "preprocessing": (record.get("preprocessing") or {}).get("key"),
                "label_sharpness": record.get("label_sharpness"),
                "d_data": record.get("d_data"),
                "test_loss": test.get("loss"),
                "test_acc": test.get("acc"),
                "eps": chosen_eps,
                "loss_penalty": (attack or {}).get("loss_penalty"),
                "acc_penalty": (attack or {}).get("acc_penalty"),
                "d_repr": pick_repr(record.get("d_repr") or {}, repr_layer),
            }
        )
    return rows
