"""How callbacks add to the results record: the :class:`RecordContributor` interface and the merge.

A callback that measures something the record holds subclasses :class:`RecordContributor` and
implements :meth:`~RecordContributor.results_record_fields`, returning its payload as a dict, e.g.
``{"fgsm": {"2.0": AttackMetrics(...)}}``, ``{"d_repr": {"layer4": {"twonn": 7.1}}}`` or
``{"label_sharpness": 1.6e-4, "d_data": 9.2}``. After fit and test, :func:`callback_fields` merges
the payloads of every contributor in callback order: nested dicts key by key (two callbacks may
fill different layers of ``d_repr``); a scalar given twice with different values keeps the later
one and warns. Keys that are record fields set those fields (protected identity fields excepted);
any other key lands in ``extra``. Tensors, numpy values and pydantic models become plain Python.
The method is called once, on every rank, after testing (or when the run stops early); only global
rank 0 writes the record. A contributor whose method raises does not lose the run: the error is
kept in ``extra["callback_errors"]``.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from lightning_dims.records.schema import PROTECTED_FIELDS, ResultsRecord

__all__ = ["RecordContributor", "build_record", "callback_fields", "merge_fields", "to_builtin"]


class RecordContributor(abc.ABC):
    """Mixin for callbacks whose measurements belong in the results record (see the module docstring)."""

    @abc.abstractmethod
    def results_record_fields(self) -> Mapping[str, Any]:
        """This callback's payload for the record; an empty dict when it measured nothing (yet)."""


def to_builtin(value: Any) -> Any:
    """Tensors, numpy values, pydantic models and containers of them as plain Python (NaN/inf become None)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu()
        value = value.item() if value.numel() == 1 else value.tolist()
    elif hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(key) if not isinstance(key, str) else key: to_builtin(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def merge_fields(into: dict[str, Any], fields: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Merge ``fields`` into ``into`` in place: dicts key by key, scalars later-wins with a warning."""
    for key, value in fields.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge_fields(into[key], value, source)
        elif key in into and into[key] != value and into[key] is not None:
            warnings.warn(f"results record field {key!r}: {source} replaces {into[key]!r} with {value!r}", stacklevel=2)
            into[key] = value
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
    return into


def callback_fields(callbacks: Iterable[object]) -> dict[str, Any]:
    """The merged payloads of every :class:`RecordContributor` among ``callbacks``."""
    merged: dict[str, Any] = {}
    for callback in callbacks:
        if not isinstance(callback, RecordContributor):
            continue
        name = type(callback).__name__
        try:
            fields = callback.results_record_fields()
        except Exception as error:  # one callback's failure must not lose the run's record
            warnings.warn(f"{name}.results_record_fields() failed, its fields are missing: {error}", stacklevel=2)
            merge_fields(merged, {"extra": {"callback_errors": {name: f"{type(error).__name__}: {error}"}}}, name)
            continue
        if fields is None:
            continue
        if not isinstance(fields, Mapping):
            raise TypeError(f"{name}.results_record_fields() must return a dict, got {type(fields).__name__}")
        merge_fields(merged, to_builtin(dict(fields)), name)
    return merged


def build_record(base: Mapping[str, Any], contributions: Mapping[str, Any] | None = None) -> ResultsRecord:
    """A validated record from the trainer's ``base`` fields plus callback ``contributions``.

    Contributions to record fields are merged into them (protected identity fields excepted, which
    go to ``extra`` like every unknown key).
    """
    data = to_builtin(dict(base))
    data.setdefault("extra", {})
    for key, value in (contributions or {}).items():
        if key in ResultsRecord.model_fields and key not in PROTECTED_FIELDS:
            merge_fields(data, {key: value}, "callbacks")
        else:
            merge_fields(data["extra"], {key: value}, "callbacks")
    return ResultsRecord.model_validate(data)
