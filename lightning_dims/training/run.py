"""One run in Python: :class:`Run` owns the run policy, :func:`fit` trains a run from a config.

Every way to start a run goes through :class:`Run`: ``lightning-dims fit`` (its LightningCLI only
parses and builds the classes, :mod:`~lightning_dims.training.fit_cli`), the sweep's warm and cold
workers and ``lightning-dims agent`` (they run that command), and a notebook or
``wandb.agent(sweep_id, function=...)`` through :func:`fit`::

    from lightning_dims.training.run import RunConfig, fit

    record = fit(RunConfig(
        model={"arch": "resnet18"},
        data={"name": "digits", "classes": [3, 8], "train_size": 200, "size": 32},
        trainer={"max_epochs": 4, "accelerator": "cpu"},
        run_dir="runs",
    ))
    record.test.acc, record.label_sharpness, record.d_data

The policy, in the order a run meets it:

1. :meth:`Run.admit` (before anything is built): refuse a zero-epoch run and ``trainer.default_root_dir``;
   resolve the run id (:func:`~lightning_dims.runs.identity.resolve_run_id`: ``run_id``, the launching
   process, ``wandb agent``'s ``WANDB_RUN_ID``, torchrun/SLURM, else a fresh id) and export it to
   DDP workers; fetch ``last.ckpt`` from W&B for a resume on a node without it; let the folder's
   state decide (:meth:`RunFolder.admit <lightning_dims.runs.folder.RunFolder.admit>`: a finished run
   is refused, a resumable one is resumed under ``wandb agent`` and otherwise refused without
   ``ckpt_path``).
2. :meth:`Run.trainer_arguments` (model and data built): set up the data (bad classes and missing
   files fail before W&B starts), the ``config_hash`` of the resolved config and the data's content,
   the resume check, the claim (global rank 0), the callbacks every run has (checkpoints, K_F/d_data,
   per-epoch seeding, the checkpoint stamp) and the W&B logger with the run's flat W&B config.
3. :meth:`Run.execute` (trainer built): fit, test the final weights, optionally the best-val weights,
   inside :func:`~lightning_dims.runs.lifecycle.recorded_run` (record, attempt journal, W&B and claim
   on every exit path); returns the record.
4. :meth:`Run.close` (also the ``with`` block's end): release the claim, forget the exported run id.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from lightning_dims.errors import ConfigError
from lightning_dims.records.build import RunFacts, eval_metrics
from lightning_dims.records.contributions import callback_fields
from lightning_dims.records.schema import ResultsRecord
from lightning_dims.records.store import read_record
from lightning_dims.runs.claims import TOKEN_ENV, Claim
from lightning_dims.runs.folder import RunFolder
from lightning_dims.runs.identity import (
    DERIVED_KEYS,
    RUN_ID_ENV,
    agent_run_id,
    config_hash,
    new_run_id,
    resolve_run_id,
    result_config,
)
from lightning_dims.runs.lifecycle import RunSession, recorded_run
from lightning_dims.runs.reproducibility import CheckpointStamp, EpochSeeding
from lightning_dims.tracking.artifacts import resume_from_artifact
from lightning_dims.tracking.run import WandbOptions, apply_run_config, make_run_logger, organised, wandb_run_config
from lightning_dims.training.checkpoints import default_checkpoints

__all__ = ["PROG", "Run", "RunConfig", "RunOptions", "fit", "optimizer_lr"]

PROG = "lightning-dims fit"


def optimizer_lr(optimizer: Any) -> float | None:
    """The learning rate an ``--optimizer`` config sets (its ``init_args.lr``), None when unset."""
    if optimizer is None:
        return None
    init_args = optimizer.get("init_args") if hasattr(optimizer, "get") else None
    lr = init_args.get("lr") if init_args is not None and hasattr(init_args, "get") else None
    return None if lr is None else float(lr)


def is_global_zero() -> bool:
    """True in the process of global rank 0 (Lightning's ``rank_zero_only.rank``; 0 before a launcher sets it)."""
    return getattr(rank_zero_only, "rank", 0) == 0


@dataclass
class RunOptions:
    """How a run is run (none of these enters ``config_hash``; the ``fit`` options of the same names).

    Attributes:
        run_dir: root folder; the run owns ``<run_dir>/<run_id>/``.
        run_id: None: resolved (:func:`~lightning_dims.runs.identity.resolve_run_id`).
        results_dir: where the record goes (None: the run folder).
        ckpt_path: resume from ``last`` or a checkpoint path.
        test_best: also test the best-val-loss weights (``test_best/*``).
        data_properties: measure K_F and d_data of the training set (``DataPropertiesCallback``).
        wandb: the W&B settings (a mapping is read as :class:`~lightning_dims.tracking.run.WandbOptions`).
    """

    run_dir: str = "runs"
    run_id: str | None = None
    results_dir: str | None = None
    ckpt_path: str | None = None
    test_best: bool = False
    data_properties: bool = True
    wandb: WandbOptions = field(default_factory=WandbOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.wandb, WandbOptions):
            self.wandb = WandbOptions(**dict(self.wandb or {}))
        self.run_dir = str(self.run_dir)
        self.results_dir = None if self.results_dir is None else str(self.results_dir)


class Run:
    """One run's policy around Lightning objects built by the caller (module docstring, steps 1-4).

    Args:
        config: the resolved config as plain data, nested as ``fit --print_config`` writes it
            (``model``, ``data``, ``trainer``, ``seed_everything``, ``optimizer``, ...): its dotted
            keys and the data's fingerprint are what ``config_hash`` covers.
        options: :class:`RunOptions`; the resolved ``run_id`` and ``ckpt_path`` are written back.
        derived: values of :data:`~lightning_dims.runs.identity.DERIVED_KEYS` that were defaults
            derived from the arch, dataset or hardware (the record names those still in force).
        preset: the hyperparameter preset that gave the defaults (``paper`` or ``none``).
    """

    def __init__(
        self, config: Mapping[str, Any], options: RunOptions, derived: Mapping[str, object] | None = None, preset: str = "paper"
    ) -> None:
        self.config = dict(config)
        self.options = options
        self.derived = dict(derived or {})
        self.preset = preset
        self.launched_id = os.environ.get(RUN_ID_ENV)
        self.folder: RunFolder | None = None
        self.claim: Claim | None = None
        self.last_seen: float | None = None
        self.facts: RunFacts | None = None

    @property
    def arch(self) -> str:
        """``model.arch`` of the config (the model registry's default when unset)."""
        return str((self.config.get("model") or {}).get("arch", "resnet18"))

    # ---- 1. before anything is built ---------------------------------------------------------
    def admit(self) -> RunFolder:
        """Refusals that need no data, the run id, the artifact fetch and the folder's state (step 1)."""
        config, options = self.config, self.options
        trainer = config.get("trainer") or {}
        if trainer.get("default_root_dir") is not None:
            raise ConfigError("trainer.default_root_dir is set by lightning-dims: use --run_dir (runs go to <run_dir>/<run_id>/)")
        if trainer.get("max_epochs") == 0 or trainer.get("max_steps") == 0:
            raise ConfigError(
                "trainer.max_epochs/max_steps is 0: that trains nothing, and the untrained network's record would "
                "enter the report; give at least 1 epoch"
            )
        data = config.get("data") or {}
        default = new_run_id(self.arch, data.get("name", "digits"), data.get("train_size", 500), data.get("seed", 0))
        from_agent = not options.run_id and agent_run_id(os.environ) is not None and not os.environ.get(RUN_ID_ENV)
        options.run_id = run_id = resolve_run_id(options.run_id, default)
        os.environ[RUN_ID_ENV] = run_id  # DDP workers re-run this command: same id, same folder
        self.folder = RunFolder.of_run(options.run_dir, run_id, options.results_dir)
        self.last_seen = self.folder.last_sign_of_life()  # before this attempt writes anything

        def fetch(local_checkpoint: Any) -> None:  # a resume on a node without the checkpoint: from W&B
            if is_global_zero():
                resume_from_artifact(options.wandb, run_id, local_checkpoint, resuming=options.ckpt_path == "last" or from_agent)

        ckpt_path = self.folder.admit(options.ckpt_path, resume=from_agent, fetch_checkpoint=fetch)
        if ckpt_path != options.ckpt_path:
            print(f"{PROG}: wandb agent re-runs {run_id!r}: resuming from {self.folder.last_checkpoint}", file=sys.stderr)
        options.ckpt_path = ckpt_path
        return self.folder

    # ---- 2. model and data built ---------------------------------------------------------------
    def run_facts(self, datamodule: Any) -> RunFacts:
        """The run's config as dotted keys, its ``config_hash``, and which keys took derived defaults."""
        result = result_config(self.config, datamodule.data_fingerprint())
        derived = [key for key in DERIVED_KEYS if key in self.derived and result.get(key) == self.derived[key]]
        data = self.config.get("data") or {}
        return RunFacts(
            run_id=str(self.options.run_id),
            seed=int(data.get("seed", 0)),
            config=result,
            config_hash=config_hash(result),
            config_derived=derived,
            preset=self.preset,
            resumed_from=self.options.ckpt_path,
        )

    def trainer_arguments(
        self, model: Any, datamodule: Any, callbacks: list[Callback] | None = None, *, logger: Any = None, enable_checkpointing: bool | None = None
    ) -> dict[str, Any]:
        """``Trainer`` arguments of the run (``callbacks``, ``default_root_dir``, ``logger``) after its checks and claim (step 2).

        ``callbacks``: the run's own; the default checkpoints (unless one is a ``ModelCheckpoint``
        or ``enable_checkpointing`` is False), ``DataPropertiesCallback`` (with
        ``options.data_properties``), per-epoch seeding and the checkpoint stamp are added.
        ``logger``: None or True gives the run's W&B logger; anything else is the caller's.
        """
        folder = self.folder if self.folder is not None else self.admit()
        if not datamodule.hparams.download:  # bad classes/sizes/missing files: fail before W&B starts
            datamodule.setup("fit")
        self.facts = facts = self.run_facts(datamodule)
        digest = str(facts.config_hash)
        warning = folder.check_resume(self.options.ckpt_path, digest, facts.config)
        if warning is not None:
            rank_zero_only(print)(f"{PROG}: warning: {warning}", file=sys.stderr)
        folder.make_writable()  # only once every value is known to be good: a refused run leaves nothing
        if is_global_zero():
            self.claim = folder.claim(f"run {facts.run_id!r}", adopt_token=os.environ.get(TOKEN_ENV))
        callbacks = list(callbacks or [])
        if enable_checkpointing is not False and not any(isinstance(callback, ModelCheckpoint) for callback in callbacks):
            callbacks.extend(default_checkpoints(folder, has_val_set=datamodule.hparams.val_size > 0))
        if self.options.data_properties:
            from lightning_dims.callbacks import DataPropertiesCallback

            if not any(isinstance(callback, DataPropertiesCallback) for callback in callbacks):
                callbacks.append(DataPropertiesCallback())
        seed = self.config.get("seed_everything")
        callbacks.append(EpochSeeding(seed if seed is not None else 0))
        callbacks.append(CheckpointStamp(facts.run_id, digest, facts.config))
        arguments: dict[str, Any] = {"callbacks": callbacks, "default_root_dir": str(folder.path)}
        if logger in (None, True):
            arguments["logger"] = self.default_logger(datamodule)
            apply_run_config(arguments["logger"], self.wandb_config(model, datamodule), PROG)
        return arguments

    def wandb_config(self, model: Any, datamodule: Any) -> dict[str, object]:
        """The run's flat W&B config (:func:`~lightning_dims.tracking.run.wandb_run_config`)."""
        assert self.facts is not None, "Run.trainer_arguments computes the facts first"
        return wandb_run_config(
            datamodule.describe(),
            arch=self.arch,
            seed=self.facts.seed,
            lr=optimizer_lr(self.config.get("optimizer")) or model.lr,
            epochs=(self.config.get("trainer") or {}).get("max_epochs"),
            config_hash=str(self.facts.config_hash),
        )

    def default_logger(self, datamodule: Any) -> Any:
        """W&B (online when configured, offline otherwise; CSV when disabled or W&B cannot start)."""
        assert self.folder is not None and self.options.run_id is not None
        described = datamodule.describe()
        facts = {"dataset": described["dataset"], "domain": described["domain"], "arch": self.arch, "task": described["task"]}
        return make_run_logger(organised(self.options.wandb, facts), self.options.run_id, self.folder.path, eager=is_global_zero())

    # ---- 3. trainer built ------------------------------------------------------------------------
    def session(self, trainer: Any, model: Any, datamodule: Any) -> RunSession:
        assert self.facts is not None and self.folder is not None, "Run.trainer_arguments comes first"
        return RunSession(
            facts=self.facts, folder=self.folder, trainer=trainer, model=model, datamodule=datamodule, claim=self.claim,
            program=PROG, last_seen=self.last_seen, wandb_artifacts=bool(self.options.wandb.artifacts),
        )  # fmt: skip

    def execute(self, trainer: Any, model: Any, datamodule: Any) -> ResultsRecord | None:
        """Fit, test the final weights, optionally the best-val weights; the record is written on every exit path.

        Returns the record on global rank 0 (None on other ranks).
        """
        with recorded_run(self.session(trainer, model, datamodule)) as outcome:
            trainer.fit(model, datamodule=datamodule, ckpt_path=self.options.ckpt_path)
            if not trainer.interrupted:
                outcome.evaluations.val = eval_metrics(trainer.callback_metrics, "val")
                if outcome.evaluations.val is None and datamodule.hparams.val_size > 0:
                    # resumed after its last epoch (killed while testing): nothing trained or validated in this process
                    trainer.validate(model, datamodule=datamodule, verbose=False)
                    outcome.evaluations.val = eval_metrics(trainer.callback_metrics, "val")
                trainer.test(model, datamodule=datamodule, verbose=trainer.is_global_zero)
                outcome.evaluations.test = eval_metrics(trainer.callback_metrics, "test")
                outcome.contributions = callback_fields(trainer.callbacks)  # before the best weights replace the final ones
                best = trainer.checkpoint_callback
                if self.options.test_best and getattr(best, "monitor", None) and getattr(best, "best_model_path", ""):
                    model.test_prefix = "test_best"
                    trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
                    outcome.evaluations.test_best = eval_metrics(trainer.callback_metrics, "test_best")
        assert self.folder is not None
        return read_record(self.folder.record_file) if trainer.is_global_zero else None

    # ---- 4. the end ------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the claim (a failure before training must not leave the run claimed) and forget the exported run id."""
        if self.claim is not None:
            self.claim.release()
        if self.launched_id is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = self.launched_id

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RunConfig:
    """A run as Python values: what ``lightning-dims fit`` takes as ``--model.*``, ``--data.*``, ``--trainer.*``.

    Attributes:
        model: :class:`~lightning_dims.models.ImageClassifier` arguments (``in_chans`` and
            ``num_classes`` come from the data).
        data: :class:`~lightning_dims.data.DimsDataModule` arguments.
        trainer: ``lightning.Trainer`` arguments (``callbacks`` may hold callback objects).
        preset: ``paper``: the paper protocol for the arch and dataset as defaults
            (:func:`~lightning_dims.models.presets.paper_defaults`); ``none``: the classes' own.
        seed_everything: the global seed (None: ``data.seed``).
        options: :class:`RunOptions` (folders, run id, resume, W&B).
    """

    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    preset: Literal["paper", "none"] = "paper"
    seed_everything: int | None = None
    options: RunOptions = field(default_factory=RunOptions)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> RunConfig:
        """A config nested as ``fit --print_config`` writes it (``model``, ``data``, ``trainer``,
        ``preset``, ``seed_everything``, and the options ``run_dir``, ``run_id``, ... at the top)."""
        config = dict(config)
        names = [item.name for item in dataclasses.fields(RunOptions)]
        options = RunOptions(**{key: config.pop(key) for key in names if key in config})
        known = [item.name for item in dataclasses.fields(cls) if item.name != "options"]
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ConfigError(f"unknown run config keys {unknown}: a run config has {', '.join(known + names)}")
        return cls(**config, options=options)

    def resolved(self, cuda_available: bool = False, bf16_supported: bool = False) -> tuple[dict[str, Any], dict[str, object]]:
        """(config, derived): the config as plain nested data (the derived defaults of ``fit`` under
        what is given: the preset, the seed, mixed precision on CUDA; the classes' other defaults
        filled in; callbacks named by their class), and the derived defaults as dotted keys."""
        from types import SimpleNamespace

        from lightning_dims.data import DimsDataModule
        from lightning_dims.models import ImageClassifier
        from lightning_dims.models.presets import derived_defaults

        given: dict[str, Any] = {"model": dict(self.model), "data": dict(self.data), "trainer": dict(self.trainer)}
        first = SimpleNamespace(
            preset=self.preset,
            model=SimpleNamespace(arch=given["model"].get("arch", "resnet18")),
            data=SimpleNamespace(name=given["data"].get("name", "digits"), seed=given["data"].get("seed", 0)),
            trainer=SimpleNamespace(accelerator=given["trainer"].get("accelerator", "auto")),
        )
        derived = derived_defaults(first, cuda_available, bf16_supported)
        if self.seed_everything is not None:
            derived.pop("seed_everything")
        for dotted, value in derived.items():
            group, _, key = dotted.partition(".")
            if group in given and key and "." not in key:
                given[group].setdefault(key, value)
        resolved = {
            "model": _with_defaults(ImageClassifier, given["model"], skip=("in_chans", "num_classes")),
            "data": _with_defaults(DimsDataModule, given["data"]),
            "trainer": {key: _plain(value) for key, value in given["trainer"].items()},
            "seed_everything": derived.get("seed_everything", self.seed_everything),
            "preset": self.preset,
        }
        return resolved, derived


def _with_defaults(cls: type, given: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``given`` with ``cls``'s other constructor defaults; :class:`ConfigError` naming an unknown key."""
    parameters = {name: p for name, p in inspect.signature(cls).parameters.items() if name not in skip}
    unknown = set(given) - set(parameters)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no argument {sorted(unknown)}: it takes {', '.join(parameters)}")
    return {name: given.get(name, p.default) for name, p in parameters.items() if name in given or p.default is not p.empty}


def _plain(value: Any) -> Any:
    """A trainer value as plain data: objects (callbacks, loggers) as ``{"class_path": ...}``."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"class_path": f"{type(value).__module__}.{type(value).__qualname__}"}


def fit(config: RunConfig | Mapping[str, Any]) -> ResultsRecord | None:
    """Train, test and record one run from Python (no command line): the run's record (None off global rank 0).

    ``config``: a :class:`RunConfig` or a mapping for :meth:`RunConfig.from_dict`. Under
    ``wandb.agent(sweep_id, function=...)`` the run takes the agent's run id and resumes a
    preempted run, as ``lightning-dims fit`` does. Raises :class:`~lightning_dims.errors.ConfigError`
    for a run that must not start (finished, an earlier checkpoint without ``ckpt_path``, a resume
    under another config).
    """
    import lightning
    import torch

    from lightning_dims.data import DimsDataModule
    from lightning_dims.models import ImageClassifier

    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    cuda = torch.cuda.is_available()
    resolved, derived = config.resolved(cuda, cuda and torch.cuda.is_bf16_supported())
    trainer_kwargs = {**config.trainer, **{key: value for key, value in resolved["trainer"].items() if key not in config.trainer}}
    with Run(resolved, config.options, derived=derived, preset=config.preset) as run:
        run.admit()
        lightning.seed_everything(resolved["seed_everything"], verbose=False)
        datamodule = DimsDataModule(**resolved["data"])
        model = ImageClassifier(**resolved["model"], in_chans=datamodule.in_chans, num_classes=datamodule.num_classes)
        trainer_kwargs.update(
            run.trainer_arguments(
                model, datamodule, trainer_kwargs.pop("callbacks", None),
                logger=trainer_kwargs.get("logger"), enable_checkpointing=trainer_kwargs.get("enable_checkpointing"),
            )
        )  # fmt: skip
        trainer = lightning.Trainer(**trainer_kwargs)
        return run.execute(trainer, model, datamodule)
