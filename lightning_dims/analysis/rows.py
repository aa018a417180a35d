"""Results records to one flat :class:`RunRow` per finished run, each named by its task.

The unit of the analysis is the **task**: one dataset with one class set and one set of dataset
options (a class pair of MNIST, ``synthetic`` at one d and contrast), trained with one arch. Two
class pairs of one dataset are two tasks. A task's display name says what it is in words, e.g.
``mnist 6 vs 7`` or ``synthetic d=4, contrast=0.5`` (only options that differ between the records of
a dataset are named; classes are named unless the task takes the dataset's own labels 0..k-1 and
no other class set of the dataset is present).

Records are :class:`~lightning_dims.records.ResultsRecord` objects or their JSON dicts, already
selected (one per run, comparable settings). Records that are not ``finished`` are left out and
each is reported as a :class:`~lightning_dims.analysis.skips.Skip`, and so are runs tested on
fewer than :data:`MIN_TEST_IMAGES` images: with 49 test images or fewer one misclassified image
moves the accuracy by 2 % or more and the mean test loss by its own loss / n, so a learning curve
of such losses follows single errors, not the training size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning_dims.analysis.skips import Skip
from lightning_dims.utils import canonical_json

__all__ = [
    "MIN_TEST_IMAGES",
    "PREFERRED_REPR_ESTIMATORS",
    "RunRow",
    "as_mapping",
    "pick_fgsm",
    "pick_repr",
    "rows_from_records",
    "task_display_names",
    "task_identity",
    "task_key",
]

MIN_TEST_IMAGES = 50
"""Runs whose record says they were tested on fewer images are skipped (module docstring)."""

PREFERRED_REPR_ESTIMATORS = ("twonn", "mle")
"""d_repr estimator read from a record, in order of preference (the paper used TwoNN)."""


@dataclass(frozen=True)
class RunRow:
    """One finished run. Units: losses in nats per image (mean cross-entropy), accuracies and AUROC in
    [0, 1], K_F in 1/intensity under ``spec``, FGSM eps in intensity units of ``spec``.

    ``label_sharpness``/``d_data``/``kf_m`` are of this run's own training set; the analysis uses one
    value per task (:func:`lightning_dims.analysis.tasks.reference_properties`). ``best_*`` are the
    best-validation-loss weights on the test set (``test_best``), None when not measured.
    ``d_repr`` maps layer name to its intrinsic dimension (estimator ``d_repr_estimator``).
    ``options`` are the dataset options of the task (e.g. ``{"d": 4, "contrast": 0.5}``).
    """

    run_id: str
    arch: str
    dataset: str
    domain: str
    task: str
    n_train: int
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    spec: str | None = None
    num_classes: int = 2
    label_sharpness: float | None = None
    d_data: float | None = None
    kf_m: int | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    test_auroc: float | None = None
    best_loss: float | None = None
    best_acc: float | None = None
    best_auroc: float | None = None
    fgsm_eps: float | None = None
    clean_loss: float | None = None
    attacked_loss: float | None = None
    loss_penalty: float | None = None
    acc_penalty: float | None = None
    d_repr: Mapping[str, float] = field(default_factory=dict)
    d_repr_estimator: str | None = None
    d_repr_source: str | None = None
    epochs: int | None = None
    n_test: int | None = None


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


def pick_repr(d_repr: Mapping[str, Mapping[str, float | None]]) -> tuple[dict[str, float], str | None]:
    """Per layer, the d_repr of the first available estimator of :data:`PREFERRED_REPR_ESTIMATORS`."""
    for estimator in PREFERRED_REPR_ESTIMATORS:
        chosen = {layer: v[estimator] for layer, v in d_repr.items() if (v or {}).get(estimator) is not None}
        if chosen:
            return chosen, estimator
    return {}, None


def task_identity(record: Mapping[str, Any]) -> tuple[str, tuple[int, ...] | None, dict]:
    """(dataset, classes, dataset options) of a record."""
    extra = record.get("extra") or {}
    options = (extra.get("data") or {}).get("options") or (extra.get("data_properties") or {}).get("options") or {}
    classes = record.get("classes")
    return record["dataset"], None if classes is None else tuple(int(c) for c in classes), dict(options)


def task_key(dataset: str, classes: Iterable[int] | None, options: Mapping[str, Any]) -> str:
    """The canonical key of a task, as :func:`task_display_names` keys its names."""
    return canonical_json([dataset, None if classes is None else list(classes), dict(options)], compact=False)


def _classes_text(classes: tuple[int, ...]) -> str:
    return " vs ".join(map(str, classes)) if len(classes) == 2 else ",".join(map(str, classes))


def task_display_names(identities: Iterable[tuple[str, tuple[int, ...] | None, dict]]) -> dict[str, str]:
    """Display name of each distinct task (``mnist 3 vs 8``; keyed by :func:`task_key`), naming only what
    tells the tasks apart. Not :func:`lightning_dims.data.splits.task_labels` (an image's 0..k-1 class label)."""
    by_dataset: dict[str, list[tuple[tuple[int, ...] | None, dict]]] = defaultdict(list)
    for dataset, classes, options in identities:
        if (classes, options) not in by_dataset[dataset]:
            by_dataset[dataset].append((classes, options))
    names = {}
    for dataset, variants in by_dataset.items():
        option_keys = list(dict.fromkeys(key for _, options in variants for key in options))  # the dataset's order
        varying = [k for k in option_keys if len({canonical_json({k: o.get(k)}, compact=False) for _, o in variants}) > 1]
        class_sets = {classes for classes, _ in variants}
        for classes, options in variants:
            parts = [dataset]
            if classes is not None and (len(class_sets) > 1 or classes != tuple(range(len(classes)))):
                parts.append(_classes_text(classes))
            name = " ".join(parts)
            if varying:
                name += " " + ", ".join(f"{key}={options.get(key)}" for key in varying)
            names[task_key(dataset, classes, options)] = name
    return names


def rows_from_records(
    records: Iterable[Any], *, eps: float | None = None
) -> tuple[list[RunRow], list[Skip]]:
    """One :class:`RunRow` per finished record, and a :class:`Skip` for every record left out.

    ``eps``: the FGSM eps (intensity units) to read; None takes each record's smallest.
    """
    mappings = [as_mapping(record) for record in records]
    skips = [
        Skip("run", str(r.get("run_id")), f"status {r.get('status')!r}, not finished")
        for r in mappings
        if r.get("status") != "finished"
    ]
    finished = [r for r in mappings if r.get("status") == "finished"]
    small = [r for r in finished if isinstance(r.get("n_test"), int) and r["n_test"] < MIN_TEST_IMAGES]
    skips += [Skip("run", str(r.get("run_id")), f"tested on {r['n_test']} images, below the floor of {MIN_TEST_IMAGES}: "
                   "its test loss moves with single errors") for r in small]
    finished = [r for r in finished if r not in small]
    identities = [task_identity(r) for r in finished]
    names = task_display_names(identities)
    rows = []
    for record, identity in zip(finished, identities):
        test, best = record.get("test") or {}, record.get("test_best") or {}
        chosen_eps, attack = pick_fgsm(record.get("fgsm") or {}, eps)
        attack = attack or {}
        d_repr, estimator = pick_repr(record.get("d_repr") or {})
        extra = record.get("extra") or {}
        properties = extra.get("data_properties") or {}
        classes = record.get("classes")
        rows.append(
            RunRow(
                run_id=record["run_id"],
                arch=record["arch"],
                dataset=record["dataset"],
                domain=record.get("domain") or "unknown",
                task=names[task_key(*identity)],
                n_train=int(record["n_train"]),
                seed=int(record.get("seed") or 0),
                options=identity[2],
                spec=(record.get("preprocessing") or {}).get("key"),
                num_classes=len(classes) if classes else 2,
                label_sharpness=record.get("label_sharpness"),
                d_data=record.get("d_data"),
                kf_m=properties.get("m"),
                test_loss=test.get("loss"),
                test_acc=test.get("acc"),
                test_auroc=test.get("auroc"),
                best_loss=best.get("loss"),
                best_acc=best.get("acc"),
                best_auroc=best.get("auroc"),
                fgsm_eps=chosen_eps,
                clean_loss=attack.get("clean_loss"),
                attacked_loss=attack.get("attacked_loss"),
                loss_penalty=attack.get("loss_penalty"),
                acc_penalty=attack.get("acc_penalty"),
                d_repr=d_repr,
                d_repr_estimator=estimator,
                d_repr_source=(extra.get("d_repr_details") or {}).get("source"),
                epochs=record.get("epochs"),
                n_test=record.get("n_test") if isinstance(record.get("n_test"), int) else None,
            )
        )
    return rows, skips
