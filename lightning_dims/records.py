"""Results records: the one JSON file every training run leaves, and all the analysis reads.

A record (:class:`ResultsRecord`) holds who the run was (run id, dataset, domain, classes, arch,
N, seed, preprocessing spec), the data's properties (K_F, d_data), how the final weights did on the
held-out test set (loss, accuracy, AUROC; best-val weights optionally), FGSM robustness per eps,
d_repr per layer and estimator, wall time and status. Units: losses are mean cross-entropy in nats
per image, accuracies fractions in [0, 1], K_F in 1/(intensity units) under ``preprocessing``,
eps in intensity units of that spec, times in seconds.

Callback protocol (how callbacks add to the record)
---------------------------------------------------
After fit and test, ``lightning-dims fit`` calls :func:`callback_fields` on ``trainer.callbacks``:
every callback with a method ``results_record_fields(self) -> dict`` contributes that dict, e.g.
``{"fgsm": {"2.0": {"clean_loss": ..., "clean_acc": ..., "attacked_loss": ..., "attacked_acc": ...}}}``,
``{"d_repr": {"layer4": {"twonn": 7.1}}}`` or ``{"label_sharpness": 1.6e-4, "d_data": 9.2}``.
Contributions are merged in callback order: nested dicts are merged key by key, so two callbacks
may fill different layers of ``d_repr``; a scalar given twice with different values keeps the later
one and warns. Keys that are record fields set those fields (:data:`PROTECTED_FIELDS` excepted);
any other key lands in ``extra``. Tensors and numpy scalars/arrays are converted to Python numbers
and lists. The method is called once, on every rank, after testing; only global rank 0 writes the
record. A callback whose method raises does not lose the run: the error is kept in
``extra["callback_errors"]``.

Files
-----
:func:`write_record` writes ``<run_id>.record.json`` atomically (a temporary file in the same folder,
flushed and fsynced, then renamed), and never overwrites a finished record: it raises
:class:`RecordExistsError`, or with ``exist="version"`` writes ``<run_id>.v2.record.json`` (v3, ...).
A failed or interrupted record may be replaced by a later attempt of the same run.
:func:`read_records` reads every ``*.record.json`` below a folder.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RECORD_SUFFIX = ".record.json"
SCHEMA = "lightning-dims/results-record"
SCHEMA_VERSION = 1
PROTECTED_FIELDS = frozenset({"schema_id", "schema_version", "run_id", "status", "dataset", "arch", "n_train", "seed"})
"""Fields a callback contribution may not set: they identify the run and are set by the trainer."""

Status = Literal["finished", "failed", "interrupted"]


class EvalMetrics(BaseModel):
    """One evaluation of a model on one split: mean cross-entropy (nats/image), accuracy, AUROC."""

    model_config = ConfigDict(extra="forbid")

    loss: float | None
    acc: float | None
    auroc: float | None = None


class FGSMResult(BaseModel):
    """FGSM at one eps (paper.md §2.4), on the test set, model in eval mode.

    ``loss_penalty = attacked_loss - clean_loss`` is the quantity the paper correlates with K_F;
    ``acc_penalty = clean_acc - attacked_acc``. Both are filled in when not given. Extra keys a
    callback adds (e.g. ``n``) are kept.
    """

    model_config = ConfigDict(extra="allow")

    clean_loss: float | None
    clean_acc: float | None
    attacked_loss: float | None
    attacked_acc: float | None
    loss_penalty: float | None = None
    acc_penalty: float | None = None

    @model_validator(mode="after")
    def _penalties(self) -> "FGSMResult":
        if self.loss_penalty is None and None not in (self.attacked_loss, self.clean_loss):
            self.loss_penalty = self.attacked_loss - self.clean_loss
        if self.acc_penalty is None and None not in (self.attacked_acc, self.clean_acc):
            self.acc_penalty = self.clean_acc - self.attacked_acc
        return self


class ResultsRecord(BaseModel):
    """Everything one training run produced, as the analysis reads it (design.md, Contracts)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")

    schema_id: Literal["lightning-dims/results-record"] = SCHEMA
    schema_version: int = SCHEMA_VERSION
    run_id: str = Field(min_length=1)
    status: Status
    dataset: str
    domain: str | None = None
    classes: list[int] | None = None
    arch: str
    n_train: int = Field(ge=0, description="N: training images")
    n_val: int | None = None
    n_test: int | None = None
    seed: int
    preprocessing: dict[str, Any] = Field(default_factory=dict, description="PreprocessingSpec dump plus its key")
    label_sharpness: float | None = Field(None, description="K_F in 1/(intensity units) under preprocessing")
    d_data: float | None = None
    test: EvalMetrics | None = Field(None, description="final weights on the test set")
    test_best: EvalMetrics | None = Field(None, description="best-validation-loss weights on the test set")
    val: EvalMetrics | None = Field(None, description="final weights on the validation set (last epoch)")
    fgsm: dict[str, FGSMResult] = Field(default_factory=dict, description="eps (intensity units) -> FGSM result")
    d_repr: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="layer -> estimator -> intrinsic dimension"
    )
    epochs: int | None = Field(None, description="training epochs completed")
    global_step: int | None = None
    hparams: dict[str, Any] = Field(default_factory=dict)
    wall_time_s: float | None = None
    started_at: str | None = None
    finished_at: str | None = None
    checkpoint: str | None = None
    wandb: dict[str, Any] | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    error: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fgsm", mode="before")
    @classmethod
    def _eps_keys_as_strings(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {_eps_key(eps): result for eps, result in value.items()}
        return value

    def flat(self) -> dict[str, Any]:
        """The record as one level of dotted keys (``test.loss``, ``fgsm.2.0.attacked_acc``), for tables."""
        return _flatten(self.model_dump(mode="json"))


class RecordExistsError(FileExistsError):
    """A finished record is already at the path a new record was to be written to."""


def _eps_key(eps: Any) -> str:
    return repr(float(eps)) if isinstance(eps, (int, float)) and not isinstance(eps, bool) else str(eps)


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(_flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def to_builtin(value: Any) -> Any:
    """Tensors, numpy values and containers of them as plain Python (NaN/inf become None)."""
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
            warnings.warn(
                f"results record field {key!r}: {source} replaces {into[key]!r} with {value!r}", stacklevel=2
            )
            into[key] = value
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
    return into


def callback_fields(callbacks: Iterable[object]) -> dict[str, Any]:
    """The merged ``results_record_fields()`` of every callback that has one (protocol above)."""
    merged: dict[str, Any] = {}
    for callback in callbacks:
        method = getattr(callback, "results_record_fields", None)
        if not callable(method):
            continue
        name = type(callback).__name__
        try:
            fields = method()
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


def record_path(folder: str | os.PathLike[str], run_id: str) -> Path:
    """Where the record of ``run_id`` goes in ``folder``: ``<folder>/<run_id>.record.json``."""
    return Path(folder) / f"{run_id}{RECORD_SUFFIX}"


def _versioned(path: Path, version: int) -> Path:
    name = path.name
    stem, suffix = (name[: -len(RECORD_SUFFIX)], RECORD_SUFFIX) if name.endswith(RECORD_SUFFIX) else (path.stem, path.suffix)
    return path.with_name(f"{stem}.v{version}{suffix}")


def is_finished(path: str | os.PathLike[str]) -> bool:
    """True unless the file is a readable record whose status is not ``finished``."""
    try:
        return json.loads(Path(path).read_text()).get("status") == "finished"
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: treat as precious, never overwrite


def write_record(
    path: str | os.PathLike[str], record: ResultsRecord, exist: Literal["error", "version"] = "error"
) -> Path:
    """Write ``record`` to ``path`` atomically; returns the path actually written.

    A finished record already at ``path`` is never overwritten: ``exist="error"`` raises
    :class:`RecordExistsError`, ``exist="version"`` writes the next free ``.vN`` name. A failed or
    interrupted record there is replaced.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = record.model_dump_json(indent=2) + "\n"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        version = 1
        while True:
            if target.exists():
                if not is_finished(target):
                    os.replace(tmp, target)
                    return target
                if exist == "error":
                    raise RecordExistsError(
                        f"a finished results record already exists at {target}; use another run id "
                        "(--run_id) or move the old record away"
                    )
                version += 1
                target = _versioned(Path(path), version)
                continue
            try:
                os.link(tmp, target)  # atomic and never clobbers a file that appeared meanwhile
            except FileExistsError:
                continue
            except OSError:  # filesystems without hard links
                os.replace(tmp, target)
            return target
    finally:
        tmp.unlink(missing_ok=True)


def read_record(path: str | os.PathLike[str]) -> ResultsRecord:
    """One record file; a clear error naming the file if it is not a valid record."""
    try:
        return ResultsRecord.model_validate_json(Path(path).read_text())
    except ValidationError as error:
        raise ValueError(f"{path} is not a valid results record: {error}") from None


def read_records(folder: str | os.PathLike[str]) -> list[ResultsRecord]:
    """Every ``*.record.json`` below ``folder`` (recursively), sorted by run id and finish time."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {root}")
    records = [read_record(path) for path in sorted(root.rglob(f"*{RECORD_SUFFIX}"))]
    return sorted(records, key=lambda record: (record.run_id, record.finished_at or ""))
