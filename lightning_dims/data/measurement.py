"""K_F and d_data of a task's training set, served from the property cache when measured before.

:func:`measure_properties` is the measurement behind :meth:`DatasetTask.properties
<lightning_dims.data.task.DatasetTask.properties>`: it looks the task's property fingerprint up in
the on-disk cache (:mod:`lightning_dims.data.property_cache`), else reads the training images,
computes K_F (:func:`~lightning_dims.properties.label_sharpness`, inverse intensity units of the
spec) and d_data (:func:`~lightning_dims.properties.intrinsic_dimension`, unitless), in
exhaustive mode both from one Gram (:func:`~lightning_dims.properties.dataset_properties`), and stores
the :class:`~lightning_dims.data.property_report.PropertyReport`.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Literal

import torch

from lightning_dims.data import property_cache
from lightning_dims.data.property_report import PropertyReport

if TYPE_CHECKING:
    from lightning_dims.data.task import DatasetTask

__all__ = [
    "LABEL_CONFLICT_EXAMPLES",
    "CacheMode",
    "LabelConflictWarning",
    "cached_report",
    "d_data_options",
    "measure_properties",
]

CacheMode = Literal["use", "refresh", "off"]
"""Property cache: ``use`` (read, compute and store when absent), ``refresh`` (compute and replace), ``off``."""

LABEL_CONFLICT_EXAMPLES = 10
"""Identical-image label conflicts kept in a report and warned about, at most."""


class LabelConflictWarning(UserWarning):
    """The same image appears under two labels in a training set."""


def d_data_options(estimator: str, k: int, options: dict | None = None) -> dict:
    """The d_data estimator's own options: ``k`` where it takes one (MLE), plus ``options``."""
    from lightning_dims.properties import make_estimator

    merged = dict(options or {})
    if "k" in make_estimator(estimator).option_names():
        merged.setdefault("k", k)
    make_estimator(estimator, **merged)  # unknown options fail here, before any pixel is read
    return merged


def cached_report(key: str) -> PropertyReport | None:
    """The report cached under ``key``, or None: absent, unreadable, or written by another version
    of the report (a miss: it is measured again and replaced)."""
    entry = property_cache.load_entry(key)
    if entry is None:
        return None
    try:
        return PropertyReport.from_cache_entry(entry)
    except ValueError:
        return None


def measure_properties(
    task: "DatasetTask",
    m: int = 1000,
    k: int = 20,
    estimator: str = "mle",
    kf_mode: str = "exhaustive",
    *,
    estimator_options: dict | None = None,
    cache: CacheMode = "use",
    device: str | torch.device | None = None,
    progress: bool = False,
) -> PropertyReport:
    """K_F and d_data of ``task``'s training set, from the cache when this exact set was measured before.

    ``k`` is the paper's MLE neighbour count, passed to estimators that take a ``k``;
    ``estimator_options`` are further options of the d_data estimator (e.g. ``unbiased``); ``m``
    images are compared for K_F (``kf_mode``: all cross-label pairs, or the paper's 2,000 sampled).
    ``device``: where the distances are computed (default: CUDA when available).

    Returns a :class:`PropertyReport`: K_F (``label_sharpness``, inverse intensity units of the
    spec), ``d_data``, how they were computed, the task description, ``cached`` (served from the
    cache) and ``label_conflicts`` (identical training images filed under two labels, each also a
    :class:`LabelConflictWarning` naming both files). :meth:`DatasetTask.properties
    <lightning_dims.data.task.DatasetTask.properties>` is this function as a method.
    """
    from lightning_dims.properties import (
        dataset_properties,
        intrinsic_dimension,
        label_conflicts,
        label_sharpness,
    )

    if cache not in ("use", "refresh", "off"):
        raise ValueError(f"cache must be 'use', 'refresh' or 'off', got {cache!r}")
    options = d_data_options(estimator, k, estimator_options)
    key = task.property_fingerprint(m, k, estimator, kf_mode, options)
    if cache == "use" and (cached := cached_report(key)) is not None:
        return cached
    started = time.perf_counter()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    x = task.images("train").to(device)
    y = task.labels("train").to(device)
    conflicts = [task.sample_names("train", pair) for pair in label_conflicts(x, y)]
    for first, second in conflicts[:LABEL_CONFLICT_EXAMPLES]:
        warnings.warn(
            f"{task.name}: the same image is in the training set under two labels: {first} and {second}",
            LabelConflictWarning,
            stacklevel=2,
        )
    if kf_mode == "exhaustive":  # both from one symmetric Gram
        both = dataset_properties(x, y, m=m, estimator=estimator, seed=task.seed, progress=progress, **options)
        sharpness, dimension = both.label_sharpness, both.d_data
    else:
        sharpness = label_sharpness(x, y, m=m, mode=kf_mode, seed=task.seed)
        dimension = intrinsic_dimension(x, estimator=estimator, progress=progress, **options)
    train = task.indices("train")
    report = PropertyReport(
        **task.describe(),
        n=int(x.shape[0]),
        label_sharpness=float(sharpness.value),
        d_data=float(dimension.dimension),
        estimator=dimension.estimator,
        k=int(dimension.k),
        estimator_options=options,
        m=int(sharpness.m),
        kf_mode=kf_mode,
        fingerprint=key,
        label_sharpness_detail=sharpness.to_dict(),
        d_data_detail=dimension.to_dict(),
        kf_pair_pool_indices=None if sharpness.pair is None else [int(train[i]) for i in sharpness.pair],
        label_conflicts={"count": len(conflicts), "examples": conflicts[:LABEL_CONFLICT_EXAMPLES]},
        compute_seconds=round(time.perf_counter() - started, 3),
        cached=False,
    )
    if cache != "off":
        property_cache.store_entry(key, report.cache_entry())
    return report
