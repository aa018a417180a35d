"""The typed result of a K_F / d_data measurement of a task's training set, and its JSON form.

:class:`PropertyReport` is what :meth:`~lightning_dims.data.task.DatasetTask.properties` returns.
Its JSON form (:meth:`PropertyReport.to_json`) is the flat object that ``lightning-dims measure
--json`` prints, that a run records under ``data_properties`` and that the property cache stores
(without ``cached``, :meth:`PropertyReport.cache_entry`): the keys are the field names.

Key order of the JSON form, kept as it always was: a fresh measurement lists the fields in the
order below; a report served from the cache lists them sorted (the cache file's order, written with
``sort_keys``), then ``cached``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["PropertyReport"]


@dataclass(frozen=True)
class PropertyReport:
    """K_F and d_data of one task's training set, what they were computed on, and how.

    The task (what :meth:`~lightning_dims.data.task.DatasetTask.describe` says):

    Attributes:
        dataset: registry name.
        task: short task name (``mnist-3v8``).
        domain: ``natural``, ``medical``, ...
        options: the dataset's options.
        classes: original class ids, in label order.
        class_names: their names.
        split_sizes: images per split (``train``, ``val``, ``test``).
        seed: class pair, split and K_F sampling seed.
        preprocessing: the spec (``size`` px, ``channels``, ``intensity``) and its ``key``.
        source: the pool's source signature.

    The measurement:

    Attributes:
        n: training images measured.
        label_sharpness: K_F, in inverse intensity units of ``preprocessing`` (paper §2.2).
        d_data: intrinsic dimension of the training images (unitless).
        estimator: the d_data estimator (``mle``, ``twonn``).
        k: its neighbour count.
        estimator_options: its options (``k`` included where it takes one).
        m: images K_F compared, min(m requested, n).
        kf_mode: ``exhaustive`` or ``paper`` (the authors' 2,000 sampled pairs).
        fingerprint: the property-cache key (hex SHA-256 of everything the numbers depend on).
        label_sharpness_detail: :class:`~lightning_dims.properties.LabelSharpness` as a dict.
        d_data_detail: :class:`~lightning_dims.properties.IntrinsicDimension` as a dict.
        kf_pair_pool_indices: the K_F arg-max pair as pool indices (None when no pair).
        label_conflicts: ``{"count": c, "examples": [[file, file], ...]}``: identical training
            images filed under two labels (at most 10 examples).
        compute_seconds: wall seconds the measurement took when it was computed.
        cached: served from the property cache by this call.
    """

    dataset: str
    task: str
    domain: str
    options: dict[str, Any]
    classes: list[int]
    class_names: list[str]
    split_sizes: dict[str, int]
    seed: int
    preprocessing: dict[str, Any]
    source: str
    n: int
    label_sharpness: float
    d_data: float
    estimator: str
    k: int
    estimator_options: dict[str, Any]
    m: int
    kf_mode: str
    fingerprint: str
    label_sharpness_detail: dict[str, Any]
    d_data_detail: dict[str, Any]
    kf_pair_pool_indices: list[int] | None
    label_conflicts: dict[str, Any]
    compute_seconds: float
    cached: bool

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object: one key per field (values shared, not copied)."""
        measured = {name: getattr(self, name) for name in self.field_names() if name != "cached"}
        if self.cached:
            measured = dict(sorted(measured.items()))
        return measured | {"cached": self.cached}

    @classmethod
    def from_json(cls, payload: object) -> "PropertyReport":
        """The report of a :meth:`to_json` object; ValueError names missing or unknown keys."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"a property report is a JSON object, got {type(payload).__name__}")
        expected = set(cls.field_names())
        missing, unknown = sorted(expected - set(payload)), sorted(set(payload) - expected)
        if missing or unknown:
            raise ValueError(f"not a property report of this version: missing keys {missing}, unknown keys {unknown}")
        return cls(**payload)

    def cache_entry(self) -> dict[str, Any]:
        """What the property cache stores: the JSON object without ``cached``."""
        entry = self.to_json()
        del entry["cached"]
        return entry

    @classmethod
    def from_cache_entry(cls, entry: object) -> "PropertyReport":
        """The report a cache entry holds, marked ``cached``; ValueError when it is not one of this version."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"a property cache entry is a JSON object, got {type(entry).__name__}")
        return cls.from_json({**entry, "cached": True})
