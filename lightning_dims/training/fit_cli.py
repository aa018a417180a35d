"""The LightningCLI of ``lightning-dims fit``: parsing, the paper preset, run identity, the resume check, the claim.

:class:`FitCLI` parses twice (the first parse finds the arch, dataset and accelerator the
defaults depend on: the paper protocol from ``lightning_dims/configs/protocol/``, the seed, the
precision), then, before anything is written: refuses a run that already finished or whose
checkpoint would be overwritten (``before_instantiate_classes``); sets up the data, computes the
run's ``config_hash``, refuses a resume under another config and claims the run
(``instantiate_trainer``); and adds the callbacks every run has (``last.ckpt`` each epoch, the
best-val checkpoint, K_F/d_data, per-epoch seeding, the checkpoint stamp) and the W&B logger.
:class:`FitConfigParser` resolves command lines without instantiating anything (config checks).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_dims.compat import cli_config_value, started_wandb_run
from lightning_dims.configs import resolve_config
from lightning_dims.data import DimsDataModule
from lightning_dims.errors import LightningDimsError
from lightning_dims.models import ImageClassifier
from lightning_dims.models.presets import mixed_precision, paper_defaults
from lightning_dims.records.build import RunFacts
from lightning_dims.records.store import RecordState, inspect_record, record_path
from lightning_dims.runs.attempts import AttemptJournal
from lightning_dims.runs.claims import TOKEN_ENV, Claim
from lightning_dims.runs.config_files import RunConfigSaver
from lightning_dims.runs.identity import (
    DERIVED_KEYS,
    RUN_ID_ENV,
    agent_run_id,
    config_hash,
    differing_keys,
    new_run_id,
    resolve_run_id,
    result_config,
)
from lightning_dims.runs.lifecycle import RunSession
from lightning_dims.runs.reproducibility import (
    CheckpointStamp,
    EpochSeeding,
    checkpoint_identity,
)
from lightning_dims.tracking.artifacts import resume_from_artifact
from lightning_dims.tracking.run import WandbOptions, make_run_logger, organised

PRESETS = ("paper", "none")
PROG = "lightning-dims fit"


class ConfigError(LightningDimsError, ValueError):
    """A configuration value that cannot work, or a run that must not start; the message names the fix."""


def derived_defaults(config: Any, cuda_available: bool, bf16_supported: bool) -> dict[str, object]:
    """Defaults that depend on other settings (first parse): the preset, the seed, the precision."""
    defaults: dict[str, object] = {"seed_everything": int(config.data.seed)}
    if config.preset == "paper":
        defaults.update(paper_defaults(config.model.arch, config.data.name))
    precision = mixed_precision(config.trainer.accelerator, cuda_available, bf16_supported)
    if precision is not None:
        defaults["trainer.precision"] = precision
    return defaults


def expand_config_names(args: list[str]) -> list[str]:
    """``--config NAME`` of a shipped config (``callbacks/fast``) as its file; paths that exist are kept."""
    expanded, take_next = [], False
    for arg in args:
        if take_next:
            expanded.append(str(resolve_config(arg)))
            take_next = False
        elif arg == "--config":
            expanded.append(arg)
            take_next = True
        elif arg.startswith("--config="):
            expanded.append(f"--config={resolve_config(arg.split('=', 1)[1])}")
        else:
            expanded.append(arg)
    return expanded


def python_literal_as_json(value: str) -> str:
    """A value as ``wandb agent`` writes it (``str()`` of a Python object: ``{'a': None}``, ``None``) as JSON.

    jsonargparse reads YAML, where ``None`` is the string "None"; containers and ``None`` are
    parsed with ``ast.literal_eval`` and re-written as JSON. Anything else is returned unchanged.
    """
    text = value.strip()
    if text == "None":
        return "null"
    if not text[:1] in ("{", "["):
        return value
    try:
        return json.dumps(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        return value  # not a Python literal (e.g. already JSON with true/null): leave it to the parser


def agent_values(args: list[str]) -> list[str]:
    """``args`` with every option value written as ``wandb agent`` writes it made parseable (see above)."""
    normalised = []
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            normalised.append(f"{key}={python_literal_as_json(value)}")
        elif not arg.startswith("--"):
            normalised.append(python_literal_as_json(arg))
        else:
            normalised.append(arg)
    return normalised


def optimizer_lr(optimizer: Any) -> float | None:
    """The learning rate an ``--optimizer`` config sets (its ``init_args.lr``), None when unset."""
    if optimizer is None:
        return None
    init_args = optimizer.get("init_args") if hasattr(optimizer, "get") else None
    lr = init_args.get("lr") if init_args is not None and hasattr(init_args, "get") else None
    return None if lr is None else float(lr)


def without_print_config(args: list[str]) -> list[str]:
    """``args`` minus ``--print_config[=...]`` (the first, defaults-finding parse must not print and exit)."""
    return [arg for arg in args if arg != "--print_config" and not arg.startswith("--print_config=")]


def writable_folder(folder: Path) -> None:
    """Create ``folder`` and check a file can be written there; :class:`ConfigError` naming it otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"cannot write to the run folder {folder} ({error.strerror or error}): choose a writable --run_dir"
        ) from None


class FitCLI(LightningCLI):
    """The LightningCLI of ``lightning-dims fit`` (no subcommands: parsing instantiates, :func:`run` trains)."""

    def __init__(self, args: list[str]) -> None:
        self.derived: dict[str, object] = {}
        self.claim: Claim | None = None
        try:
            super().__init__(
                model_class=ImageClassifier,
                datamodule_class=DimsDataModule,
                save_config_callback=RunConfigSaver,
                trainer_defaults={"enable_autolog_hparams": False},  # the run's W&B config is flat and ours
                parser_kwargs={"prog": PROG, "description": __doc__.split("\n\n")[0], "exit_on_error": False, "allow_abbrev": False},
                args=args,
                run=False,
                auto_configure_optimizers=True,  # --optimizer/--lr_scheduler; unset: the model's paper Adam
            )
        except BaseException:
            if self.claim is not None:  # e.g. the logger failed after the run was claimed
                self.claim.release()
            raise

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--preset", type=Literal["paper", "none"], default="paper",
            help="default hyperparameters: 'paper' (lightning_dims/configs/protocol/ for the arch and dataset) or 'none'",
        )  # fmt: skip
        parser.add_argument("--run_dir", type=str, default="runs", help="root folder; each run gets <run_dir>/<run_id>/")
        parser.add_argument("--run_id", type=str | None, default=None, help="default: <arch>-<data>-n<N>-s<seed>-<time>-<hex>")
        parser.add_argument("--results_dir", type=str | None, default=None, help="where the record goes (default: the run folder)")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="resume: 'last' or a checkpoint path")
        parser.add_argument("--test_best", type=bool, default=False, help="also test the best-val-loss weights (test_best/*)")
        parser.add_argument(
            "--data_properties", type=bool, default=True,
            help="measure K_F and d_data of the training set (DataPropertiesCallback) into W&B and the record",
        )  # fmt: skip
        parser.add_class_arguments(WandbOptions, "wandb")
        parser.link_arguments("data.in_chans", "model.in_chans", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse twice: the first parse finds the arch/dataset/accelerator that the defaults depend on."""
        args = expand_config_names(agent_values(sys.argv[1:] if args is None else list(args)))
        if not hasattr(self, "base_defaults"):
            self.base_defaults = parser.get_defaults()  # before any derived default is set
        first = parser.parse_args(without_print_config(args))
        cuda = torch.cuda.is_available()
        self.derived = derived_defaults(first, cuda, cuda and torch.cuda.is_bf16_supported())
        parser.set_defaults(self.derived)
        self.config = parser.parse_args(args)

    def before_instantiate_classes(self) -> None:
        """Checks that need no data: folders, epochs, the run id, and runs that must not start again."""
        config = self.config
        if config.trainer.default_root_dir is not None:
            raise ConfigError("trainer.default_root_dir is set by lightning-dims: use --run_dir (runs go to <run_dir>/<run_id>/)")
        if config.get("lr_scheduler") is not None and config.get("optimizer") is None:
            raise ConfigError(
                "--lr_scheduler needs --optimizer: LightningCLI schedules only an optimizer it builds; give both, e.g. "
                "--optimizer Adam --optimizer.lr 0.001 --optimizer.weight_decay 0.0001 --lr_scheduler CosineAnnealingLR "
                "--lr_scheduler.T_max 100"
            )
        if config.trainer.max_epochs == 0 or config.trainer.max_steps == 0:
            raise ConfigError(
                "trainer.max_epochs/max_steps is 0: that trains nothing, and the untrained network's record would "
                "enter the report; give at least 1 epoch"
            )
        default = new_run_id(config.model.arch, config.data.name, config.data.train_size, config.data.seed)
        from_agent = not config.run_id and agent_run_id(os.environ) is not None and not os.environ.get(RUN_ID_ENV)
        config.run_id = resolve_run_id(config.run_id, default)
        os.environ[RUN_ID_ENV] = config.run_id  # DDP workers re-run this command: same id, same folder
        self.run_folder = Path(config.run_dir) / config.run_id
        self.record_file = record_path(config.results_dir or self.run_folder, config.run_id)
        self.last_seen = AttemptJournal(self.run_folder).last_sign_of_life()  # before this attempt writes anything
        state, record, _ = inspect_record(self.record_file)
        if state is RecordState.FINISHED:
            raise ConfigError(
                f"run {config.run_id!r} already finished (status {record.status}, results record {self.record_file}, config_hash "
                f"{record.config_hash}): nothing to run or resume; choose another --run_id for a new run"
            )
        last = self.run_folder / "checkpoints" / "last.ckpt"
        if rank_zero_only.rank == 0:  # a resume on a node without the checkpoint: fetch it from W&B
            resume_from_artifact(config.wandb, config.run_id, last, resuming=config.ckpt_path == "last" or from_agent)
        if last.is_file() and not config.ckpt_path and from_agent:
            config.ckpt_path = "last"  # wandb agent re-running its preempted run: continue it
            print(f"{PROG}: wandb agent re-runs {config.run_id!r}: resuming from {last}", file=sys.stderr)
        if last.is_file() and not config.ckpt_path:
            raise ConfigError(
                f"run {config.run_id!r} has a checkpoint from an earlier attempt ({last}): resume it with "
                "--ckpt_path last, or choose another --run_id"
            )

    # ---- identity, resume check and claim (need the data) -------------------------------------------
    def run_facts(self) -> RunFacts:
        """The run's config as dotted keys, its ``config_hash``, and which keys took derived defaults."""
        dumped = self.parser.dump(self.config, format="json", skip_unset=False)
        result = result_config(json.loads(dumped), self.datamodule.data_fingerprint())
        derived = [key for key in DERIVED_KEYS if key in self.derived and result.get(key) == self.derived[key]]
        return RunFacts(
            run_id=self.config.run_id,
            seed=int(self.config.data.seed),
            config=result,
            config_hash=config_hash(result),
            config_derived=derived,
            preset=self.config.preset,
            resumed_from=self.config.ckpt_path,
        )

    def check_resume(self, facts: RunFacts) -> None:
        """Refuse to resume from a checkpoint that was trained under another config (naming the keys)."""
        requested = self.config.ckpt_path
        if not requested or requested in ("best", "hpc", "registry"):
            return
        path = self.run_folder / "checkpoints" / "last.ckpt" if requested == "last" else Path(requested)
        if not path.is_file():
            if requested != "last":
                raise ConfigError(f"--ckpt_path {requested}: no such checkpoint file")
            return  # 'last' with nothing to resume: a fresh start, as Lightning does
        stamp = checkpoint_identity(path)
        if stamp is None:
            rank_zero_only(print)(f"{PROG}: warning: {path} carries no config_hash (older version): resuming unchecked", file=sys.stderr)
            return
        if stamp["config_hash"] != facts.config_hash:
            changes = differing_keys(stamp.get("config", {}), facts.config)
            shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
            raise ConfigError(
                f"resume refused: {path} was trained under another config (config_hash {stamp['config_hash']}, "
                f"now {facts.config_hash}): {shown}. Resume with the original settings, or start a new run (--run_id)"
            )

    def instantiate_trainer(self, **kwargs: Any):
        if not self.datamodule.hparams.download:  # bad classes/sizes/missing files: fail before W&B starts
            self.datamodule.setup("fit")
        self.facts = self.run_facts()
        self.check_resume(self.facts)
        writable_folder(self.run_folder)  # only once every value is known to be good: a refused run leaves nothing
        if self.config.results_dir:
            writable_folder(Path(self.config.results_dir))
        if rank_zero_only.rank == 0:
            self.claim = Claim.acquire(
                self.run_folder, adopt_token=os.environ.get(TOKEN_ENV), what=f"run {self.config.run_id!r}"
            )
        trainer_config = cli_config_value(self, self.config_init, "trainer", default={})
        callbacks = list(trainer_config.get("callbacks") or [])
        if trainer_config.get("enable_checkpointing") is not False and not any(
            isinstance(callback, ModelCheckpoint) for callback in callbacks
        ):
            callbacks.extend(self.default_checkpoints())
        if self.config.data_properties:
            from lightning_dims.callbacks import DataPropertiesCallback

            if not any(isinstance(callback, DataPropertiesCallback) for callback in callbacks):
                callbacks.append(DataPropertiesCallback())
        callbacks.append(EpochSeeding(self.config.seed_everything if self.config.seed_everything is not None else 0))
        callbacks.append(CheckpointStamp(self.facts.run_id, self.facts.config_hash, self.facts.config))
        kwargs["callbacks"] = callbacks
        kwargs["default_root_dir"] = str(self.run_folder)
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = self.default_logger()
            self.describe_wandb_run(kwargs["logger"])
        return super().instantiate_trainer(**kwargs)

    def describe_wandb_run(self, logger: Any) -> None:
        """The flat W&B config of the run (one meaning per key, agent or not) and ``val/loss`` summarised as its minimum."""
        from lightning.pytorch.loggers import WandbLogger

        if rank_zero_only.rank != 0 or not isinstance(logger, WandbLogger) or started_wandb_run(logger) is None:
            return
        described = self.datamodule.describe()
        flat = {
            "dataset": described["dataset"],
            "task": described["task"],
            "domain": described["domain"],
            "arch": self.config.model.arch,
            "n_train": described["split_sizes"]["train"],
            "seed": int(self.config.data.seed),
            "spec": described["preprocessing"]["key"],
            "lr": optimizer_lr(self.config.get("optimizer")) or self.model.lr,
            "epochs": self.config.trainer.max_epochs,
            "config_hash": self.facts.config_hash,
        }
        try:
            logger.experiment.config.update(flat, allow_val_change=True)
            logger.experiment.define_metric("val/loss", summary="min")
        except Exception as error:  # W&B must never fail a run
            rank_zero_only(print)(f"{PROG}: warning: could not describe the W&B run: {error}", file=sys.stderr)

    def default_checkpoints(self) -> list[ModelCheckpoint]:
        """``last.ckpt`` at the end of every training epoch, and the best-val-loss checkpoint when there is a val set.

        ``last`` is its own callback because Lightning writes ``save_last`` only when a top-k
        checkpoint is saved (when val loss improves); resuming and the paper (which keeps the last
        epoch) need every epoch's final weights. It is written at the end of the training epoch,
        after the epoch's validation and measurements, so a resume repeats none of them.
        """
        folder = self.run_folder / "checkpoints"
        last = ModelCheckpoint(
            dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False,
            save_on_train_epoch_end=True,
        )  # fmt: skip
        if self.datamodule.hparams.val_size <= 0:
            return [last]
        best = ModelCheckpoint(
            dirpath=folder,
            filename="best-epoch{epoch:03d}-val_loss{val/loss:.4f}",
            monitor="val/loss",
            mode="min",
            save_top_k=1,
            auto_insert_metric_name=False,
        )
        return [best, last]  # trainer.checkpoint_callback (the first) is the one ckpt_path="best" uses

    def default_logger(self):
        """W&B (online when configured, offline otherwise; CSV when disabled or W&B cannot start)."""
        options = self.config_init.wandb
        if not isinstance(options, WandbOptions):
            options = WandbOptions(**dict(options))
        described = self.datamodule.describe()
        facts = {"dataset": described["dataset"], "domain": described["domain"], "arch": self.config.model.arch, "task": described["task"]}
        return make_run_logger(organised(options, facts), self.config.run_id, self.run_folder, eager=rank_zero_only.rank == 0)

    def session(self) -> RunSession:
        return RunSession(
            facts=self.facts,
            folder=self.run_folder,
            record_file=self.record_file,
            trainer=self.trainer,
            model=self.model,
            datamodule=self.datamodule,
            claim=self.claim,
            program=PROG,
            last_seen=self.last_seen,
            wandb_artifacts=bool(self.config.wandb.artifacts),
        )


class _Parsed(Exception):
    def __init__(self, cli: FitCLI):
        self.cli = cli


class _ParseOnlyCLI(FitCLI):
    def before_instantiate_classes(self) -> None:
        raise _Parsed(self)


class FitConfigParser:
    """Resolves ``fit`` command lines to configs (both parses, preset and derived defaults) without
    instantiating, training or writing anything: for checking configs and sweep commands cheaply.

    The parser is built once and reused; each :meth:`parse` starts from its original defaults.
    Raises the same errors as ``fit`` for values the parser refuses.
    """

    def __init__(self):
        try:
            _ParseOnlyCLI([])
        except _Parsed as parsed:
            self._cli = parsed.cli

    def dump(self, config: Any) -> dict:
        """A resolved config as plain data (for comparing two command lines)."""
        return json.loads(self._cli.parser.dump(config, format="json", skip_unset=False))

    def instantiate(self, config: Any) -> Any:
        """The config with its classes built (``.model``, ``.data``; the data's channels and classes linked into the model)."""
        return self._cli.parser.instantiate_classes(config)

    def parse(self, args: list[str]) -> Any:
        parser = self._cli.parser
        parser.set_defaults({key: self._cli.base_defaults.get(key) for key in self._cli.derived})
        self._cli.parse_arguments(parser, list(args))
        return self._cli.config


