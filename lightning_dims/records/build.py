"""A results record from a Lightning run: what the trainer, module and data module know, plus the run's facts.

Kept apart from the CLI so it can be built (and tested) from any ``Trainer``/``LightningModule``/
data module triple: :func:`record_base` reads the objects, :func:`run_record` adds the callbacks'
payloads (:mod:`~lightning_dims.records.contributions`) and validates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_dims.records.contributions import build_record
from lightning_dims.records.schema import EvalMetrics, ResultsRecord, RunStatus

__all__ = [
    "Evaluations",
    "RunFacts",
    "describe_data",
    "eval_metrics",
    "last_checkpoint",
    "optimizer_used",
    "record_base",
    "run_record",
    "software_versions",
    "utc_now",
]


@dataclass(frozen=True)
class RunFacts:
    """What the entry point knows of a run that the Lightning objects do not.

    Attributes:
        run_id: the run's id (folder, record, W&B run).
        seed: the data seed (class pair, splits, batch order).
        config: the resolved config as dotted keys (what ``config_hash`` covers).
        config_hash: 16 hex digits of ``config``.
        config_derived: keys of ``config`` whose values were derived from arch/dataset/hardware.
        preset: the hyperparameter preset (``paper`` or ``none``).
        resumed_from: the checkpoint this attempt resumed from (``last``, a path, or None).
    """

    run_id: str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    config_derived: Sequence[str] = ()
    preset: str | None = None
    resumed_from: str | None = None


@dataclass
class Evaluations:
    """The evaluations a run made: final weights on val and test, best-val weights on test."""

    val: EvalMetrics | None = None
    test: EvalMetrics | None = None
    test_best: EvalMetrics | None = None


def eval_metrics(metrics: Mapping[str, Any], stage: str) -> EvalMetrics | None:
    """``{stage}/loss``, ``/acc``, ``/auroc`` from ``trainer.callback_metrics``; None when not logged."""
    values = {name: metrics.get(f"{stage}/{name}") for name in ("loss", "acc", "auroc")}
    if values["loss"] is None and values["acc"] is None:
        return None
    return EvalMetrics(**{name: None if value is None else float(value) for name, value in values.items()})


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def last_checkpoint(callbacks: Sequence[object]) -> str | None:
    """Path of the final weights: a ``last`` checkpoint callback's file, else any callback's ``last_model_path``."""
    for callback in callbacks:
        if getattr(callback, "filename", None) == "last" and getattr(callback, "best_model_path", ""):
            return callback.best_model_path
    return next((cb.last_model_path for cb in callbacks if getattr(cb, "last_model_path", "")), None)


def describe_data(datamodule: Any, facts: RunFacts) -> dict[str, Any]:
    """The data module's ``describe()``, or what the config says when the data never loaded."""
    try:
        return datamodule.describe()
    except Exception as error:  # the run failed before its data loaded: record what is known
        config = facts.config
        return {
            "dataset": config.get("data.name", "unknown"),
            "classes": config.get("data.classes"),
            "split_sizes": {"train": config.get("data.train_size", 0)},
            "preprocessing": {},
            "describe_error": (str(error).strip().splitlines() or [type(error).__name__])[0],
        }


def software_versions() -> dict[str, str]:
    import lightning
    import torch
    import torchvision

    from lightning_dims import __version__

    return {
        "lightning_dims": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
    }


def optimizer_used(trainer: Any) -> dict[str, Any]:
    """The optimizer and scheduler the run trained with, as the trainer holds them (``--optimizer`` and
    ``--lr_scheduler``, or the model's own Adam): ``optimizer`` (class name), ``lr`` (the starting
    learning rate: ``initial_lr`` once a scheduler has run), ``weight_decay``, ``lr_scheduler`` (None
    without one). Empty when nothing was trained (the record keeps the model's ``lr``)."""
    optimizers = list(getattr(trainer, "optimizers", None) or [])
    if not optimizers:
        return {}
    group = optimizers[0].param_groups[0]
    schedulers = list(getattr(trainer, "lr_scheduler_configs", None) or [])
    return {
        "optimizer": type(optimizers[0]).__name__,
        "lr": float(group.get("initial_lr", group["lr"])),
        "weight_decay": group.get("weight_decay"),
        "lr_scheduler": type(schedulers[0].scheduler).__name__ if schedulers else None,
    }


def record_base(
    facts: RunFacts,
    *,
    trainer: Any,
    model: Any,
    datamodule: Any,
    status: RunStatus,
    error: str | None,
    evaluations: Evaluations,
    attempts: Sequence[Mapping[str, Any]] = (),
    wandb: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record fields the trainer, module, data module and facts know (callbacks add theirs)."""
    described = describe_data(datamodule, facts)
    sizes = described.get("split_sizes", {})
    wall_times = [attempt.get("wall_time_s") for attempt in attempts if attempt.get("wall_time_s") is not None]
    hparams = getattr(model, "hparams", {})
    return {
        "run_id": facts.run_id,
        "status": status,
        "dataset": described["dataset"],
        "domain": described.get("domain"),
        "classes": described.get("classes"),
        "arch": hparams.get("arch", type(model).__name__),
        "n_train": sizes.get("train", 0),
        "n_val": sizes.get("val"),
        "n_test": sizes.get("test"),
        "seed": facts.seed,
        "preprocessing": described.get("preprocessing", {}),
        "config_hash": facts.config_hash,
        "config": dict(facts.config),
        "config_derived": list(facts.config_derived),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "hparams": {
            "preset": facts.preset,
            "lr": getattr(model, "lr", None),
            "weight_decay": hparams.get("weight_decay"),
            **optimizer_used(trainer),
            "batch_size": getattr(datamodule, "batch_size", None),
            "max_epochs": trainer.max_epochs,
            "precision": str(trainer.precision),
            "head_size": getattr(model, "head_size", None),
            "pretrained": hparams.get("pretrained"),
            "seed_everything": facts.config.get("seed_everything"),
            "world_size": trainer.world_size,
            "resumed_from": facts.resumed_from,
        },
        "val": evaluations.val,
        "test": evaluations.test,
        "test_best": evaluations.test_best,
        "wall_time_s": sum(wall_times) if wall_times else None,
        "attempts": list(attempts),
        "started_at": attempts[0].get("started_at") if attempts else None,
        "finished_at": utc_now(),
        "checkpoint": last_checkpoint(trainer.checkpoint_callbacks),
        "wandb": dict(wandb) if wandb else None,
        "versions": software_versions(),
        "error": error,
        "extra": {"data": {key: described[key] for key in ("class_names", "options", "source") if key in described}},
    }


def run_record(facts: RunFacts, contributions: Mapping[str, Any] | None = None, **objects: Any) -> ResultsRecord:
    """The validated record of a run: :func:`record_base` (``objects`` are its keyword arguments) plus payloads."""
    return build_record(record_base(facts, **objects), contributions)
