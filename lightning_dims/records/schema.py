"""The results record: the one JSON file every training run leaves, and all the analysis reads.

A record (:class:`ResultsRecord`) holds who the run was (run id, dataset, domain, classes, arch,
N, seed, preprocessing spec, the whole resolved config and its ``config_hash``), the data's
properties (K_F, d_data), how the final weights did on the held-out test set (loss, accuracy,
AUROC; best-val weights optionally), FGSM robustness per eps, d_repr per layer and estimator, every
attempt that worked on it, wall time and status.

Units: losses are mean cross-entropy in nats per image, accuracies fractions in [0, 1], K_F in
1/(intensity units) under ``preprocessing``, eps in intensity units of that spec, times in seconds.

Status (:class:`RunStatus`): ``finished`` (trained and tested), ``smoke`` (ran to its end under a
smoke-test setting, :func:`smoke_settings`: Lightning's ``fast_dev_run``, ``limit_*_batches`` below
the whole set, ``overfit_batches``; complete, so never run again, but its numbers are not a result
and no report uses it), ``failed`` (an exception; ``error`` says which), ``interrupted`` (stopped by
a signal: SIGTERM/SIGINT or a preemption; resumable with ``--ckpt_path last``). A SIGKILLed attempt
writes nothing itself; the next attempt lists it in ``attempts`` with status ``killed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lightning_dims.properties.robustness import AttackMetrics, eps_key
from lightning_dims.utils import StrEnum, flatten

__all__ = [
    "COMPLETE_STATUSES",
    "PROTECTED_FIELDS",
    "RECORD_SUFFIX",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SMOKE_LIMITS",
    "WANDB_RECORD_FILE",
    "Attempt",
    "AttemptStatus",
    "EvalMetrics",
    "FGSMResult",
    "ResultsRecord",
    "RunStatus",
    "Status",
    "smoke_settings",
]

RECORD_SUFFIX = ".record.json"
WANDB_RECORD_FILE = "results_record.json"
"""The record's name among its W&B run's files: one per run, whatever the run id, and not ending in
:data:`RECORD_SUFFIX`, so the copy inside a run folder's ``wandb/`` is not read as a second record."""
SCHEMA = "lightning-dims/results-record"
SCHEMA_VERSION = 2
"""2: ``config``, ``config_hash``, ``config_derived``, ``attempts``, ``data_warnings`` added."""

PROTECTED_FIELDS = frozenset(
    {"schema_id", "schema_version", "run_id", "status", "dataset", "arch", "n_train", "seed", "config", "config_hash"}
)
"""Fields a callback contribution may not set: they identify the run and are set by the trainer."""


class RunStatus(StrEnum):
    """How a training run, or one attempt (one process) at it, stands; the values are what records store.

    ``running``: an attempt that has started and not ended (the attempt journal only; never in a record).
    ``finished``: trained and tested to the end. ``smoke``: ran to its end under a smoke-test setting
    (complete, never reported). ``failed``: an exception stopped it (``error`` says which); resumable.
    ``interrupted``: a signal stopped it (SIGTERM/SIGINT, a preemption); resumable.
    ``killed``: an attempt that ended without writing anything (SIGKILL, a lost node), closed by the
    next attempt; an attempt's status only, never a run's.
    """

    RUNNING = "running"
    FINISHED = "finished"
    SMOKE = "smoke"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    KILLED = "killed"


Status = Literal[RunStatus.FINISHED, RunStatus.SMOKE, RunStatus.FAILED, RunStatus.INTERRUPTED]
"""A record's status: how the run's latest attempt ended."""
AttemptStatus = Literal[RunStatus.FINISHED, RunStatus.SMOKE, RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.KILLED]
"""How one ended attempt ended."""
COMPLETE_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.SMOKE})
"""Statuses of a run that ran to its end: never run or resumed again (only ``finished`` is reported)."""

SMOKE_LIMITS = ("trainer.limit_train_batches", "trainer.limit_val_batches", "trainer.limit_test_batches")
"""Lightning's batch limits: any value but the whole set (1.0, or unset) makes a run a smoke test."""


def smoke_settings(config: Mapping[str, Any]) -> list[str]:
    """``key=value`` of every smoke-test setting in a run's dotted-key ``config`` (empty for a real run).

    ``trainer.fast_dev_run`` true or a batch count; ``trainer.limit_{train,val,test}_batches`` other
    than ``1.0`` (a fraction or a batch count: part of a split); ``trainer.overfit_batches`` above 0.
    A run under any of them trains or evaluates on part of its data, so it must never enter a report.
    """
    found = []
    fast = config.get("trainer.fast_dev_run")
    if fast not in (None, False, 0):
        found.append(f"trainer.fast_dev_run={fast}")
    for key in SMOKE_LIMITS:
        value = config.get(key)
        if value is not None and not (isinstance(value, float) and value == 1.0):
            found.append(f"{key}={value}")
    overfit = config.get("trainer.overfit_batches")
    if overfit not in (None, 0, 0.0):
        found.append(f"trainer.overfit_batches={overfit}")
    return found


class EvalMetrics(BaseModel):
    """One evaluation of a model on one split: mean cross-entropy (nats/image), accuracy, AUROC."""

    model_config = ConfigDict(extra="forbid")

    loss: float | None
    acc: float | None
    auroc: float | None = None


FGSMResult = AttackMetrics
"""The FGSM payload at one eps (owned by :mod:`lightning_dims.properties.robustness`)."""


class Attempt(BaseModel):
    """One process's go at a run: when, where, from which checkpoint, and how it ended.

    ``ended_at`` of a ``killed`` attempt is its last heartbeat (the claim file's time), so
    ``wall_time_s`` counts the time it really ran.
    """

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    status: AttemptStatus
    started_at: str
    ended_at: str | None = None
    wall_time_s: float | None = None
    host: str | None = None
    pid: int | None = None
    resumed_from: str | None = None


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
    config_hash: str | None = Field(None, description="sha256 (16 hex) of `config`: equal hashes, equal results")
    config: dict[str, Any] = Field(
        default_factory=dict, description="the resolved fit config as dotted keys, without what cannot change a result"
    )
    config_derived: list[str] = Field(
        default_factory=list,
        description="config keys whose value was derived from the arch/dataset/hardware (paper preset, precision)",
    )
    label_sharpness: float | None = Field(None, description="K_F in 1/(intensity units) under preprocessing")
    d_data: float | None = None
    test: EvalMetrics | None = Field(None, description="final weights on the test set")
    test_best: EvalMetrics | None = Field(None, description="best-validation-loss weights on the test set")
    val: EvalMetrics | None = Field(None, description="final weights on the validation set (last epoch)")
    fgsm: dict[str, AttackMetrics] = Field(default_factory=dict, description="eps (intensity units) -> FGSM result")
    d_repr: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="layer -> estimator -> intrinsic dimension"
    )
    epochs: int | None = Field(None, description="training epochs completed")
    global_step: int | None = None
    hparams: dict[str, Any] = Field(default_factory=dict)
    wall_time_s: float | None = Field(None, description="seconds, summed over all attempts")
    attempts: list[Attempt] = Field(default_factory=list, description="every process that worked on this run")
    started_at: str | None = Field(None, description="start of the first attempt (UTC)")
    finished_at: str | None = None
    checkpoint: str | None = None
    wandb: dict[str, Any] | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    data_warnings: dict[str, Any] = Field(
        default_factory=dict, description="counted data problems, e.g. images listed under two labels"
    )
    error: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fgsm", mode="before")
    @classmethod
    def _eps_keys_as_strings(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {eps_key(eps): result for eps, result in value.items()}
        return value

    @property
    def resumed(self) -> bool:
        """True when more than one attempt worked on the run."""
        return len(self.attempts) > 1

    def flat(self) -> dict[str, Any]:
        """The record as one level of dotted keys (``test.loss``, ``fgsm.2.0.attacked_acc``), for tables."""
        return flatten(self.model_dump(mode="json", exclude={"config"})) | {
            f"config.{key}": value for key, value in self.config.items()
        }
