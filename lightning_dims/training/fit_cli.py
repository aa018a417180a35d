"""The LightningCLI of ``lightning-dims fit``: parsing, the paper preset, run identity, the resume check, the claim.

:class:`FitCLI` parses twice (argv normalised by :mod:`~lightning_dims.training.argv`; the first
parse finds what :func:`~lightning_dims.models.presets.derived_defaults` depend on). Before
anything is written its :class:`~lightning_dims.runs.folder.RunFolder` refuses a finished run, an
overwritten checkpoint and (with the data's ``config_hash``) a resume under another config; then
it claims the run and adds the callbacks every run has (:mod:`~lightning_dims.training.checkpoints`,
K_F/d_data, per-epoch seeding, the checkpoint stamp) and the W&B logger with the flat W&B config.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_dims.compat import cli_config_value
from lightning_dims.data import DimsDataModule
from lightning_dims.errors import ConfigError
from lightning_dims.models import ImageClassifier
from lightning_dims.models.presets import derived_defaults
from lightning_dims.records.build import RunFacts
from lightning_dims.runs.attempts import AttemptJournal
from lightning_dims.runs.claims import TOKEN_ENV, Claim
from lightning_dims.runs.config_files import RunConfigSaver
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
from lightning_dims.runs.lifecycle import RunSession
from lightning_dims.runs.reproducibility import CheckpointStamp, EpochSeeding
from lightning_dims.tracking.artifacts import resume_from_artifact
from lightning_dims.tracking.run import WandbOptions, apply_run_config, make_run_logger, organised, wandb_run_config
from lightning_dims.training.argv import agent_values, expand_config_names, without_print_config
from lightning_dims.training.checkpoints import default_checkpoints

PROG = "lightning-dims fit"


def optimizer_lr(optimizer: Any) -> float | None:
    """The learning rate an ``--optimizer`` config sets (its ``init_args.lr``), None when unset."""
    if optimizer is None:
        return None
    init_args = optimizer.get("init_args") if hasattr(optimizer, "get") else None
    lr = init_args.get("lr") if init_args is not None and hasattr(init_args, "get") else None
    return None if lr is None else float(lr)


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
        self.run_folder = RunFolder.of_run(config.run_dir, config.run_id, config.results_dir)
        self.last_seen = AttemptJournal(self.run_folder.path).last_sign_of_life()  # before this attempt writes anything
        self.run_folder.refuse_finished()
        last = self.run_folder.last_checkpoint
        if rank_zero_only.rank == 0:  # a resume on a node without the checkpoint: fetch it from W&B
            resume_from_artifact(config.wandb, config.run_id, last, resuming=config.ckpt_path == "last" or from_agent)
        if last.is_file() and not config.ckpt_path and from_agent:
            config.ckpt_path = "last"  # wandb agent re-running its preempted run: continue it
            print(f"{PROG}: wandb agent re-runs {config.run_id!r}: resuming from {last}", file=sys.stderr)
        self.run_folder.refuse_overwrite(config.ckpt_path)

    # ---- identity, resume check, claim, callbacks and logger (need the data) -----------------------
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

    def instantiate_trainer(self, **kwargs: Any):
        if not self.datamodule.hparams.download:  # bad classes/sizes/missing files: fail before W&B starts
            self.datamodule.setup("fit")
        self.facts = self.run_facts()
        warning = self.run_folder.check_resume(self.config.ckpt_path, self.facts.config_hash, self.facts.config)
        if warning is not None:
            rank_zero_only(print)(f"{PROG}: warning: {warning}", file=sys.stderr)
        self.run_folder.make_writable()  # only once every value is known to be good: a refused run leaves nothing
        if rank_zero_only.rank == 0:
            self.claim = self.run_folder.claim(f"run {self.config.run_id!r}", adopt_token=os.environ.get(TOKEN_ENV))
        trainer_config = cli_config_value(self, self.config_init, "trainer", default={})
        callbacks = list(trainer_config.get("callbacks") or [])
        if trainer_config.get("enable_checkpointing") is not False and not any(
            isinstance(callback, ModelCheckpoint) for callback in callbacks
        ):
            callbacks.extend(default_checkpoints(self.run_folder, has_val_set=self.datamodule.hparams.val_size > 0))
        if self.config.data_properties:
            from lightning_dims.callbacks import DataPropertiesCallback

            if not any(isinstance(callback, DataPropertiesCallback) for callback in callbacks):
                callbacks.append(DataPropertiesCallback())
        callbacks.append(EpochSeeding(self.config.seed_everything if self.config.seed_everything is not None else 0))
        callbacks.append(CheckpointStamp(self.facts.run_id, self.facts.config_hash, self.facts.config))
        kwargs["callbacks"] = callbacks
        kwargs["default_root_dir"] = str(self.run_folder.path)
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = self.default_logger()
            apply_run_config(kwargs["logger"], self.wandb_config(), PROG)
        return super().instantiate_trainer(**kwargs)

    def wandb_config(self) -> dict[str, object]:
        """The run's flat W&B config (:func:`~lightning_dims.tracking.run.wandb_run_config`)."""
        return wandb_run_config(
            self.datamodule.describe(),
            arch=self.config.model.arch,
            seed=int(self.config.data.seed),
            lr=optimizer_lr(self.config.get("optimizer")) or self.model.lr,
            epochs=self.config.trainer.max_epochs,
            config_hash=self.facts.config_hash,
        )

    def default_logger(self):
        """W&B (online when configured, offline otherwise; CSV when disabled or W&B cannot start)."""
        options = self.config_init.wandb
        if not isinstance(options, WandbOptions):
            options = WandbOptions(**dict(options))
        described = self.datamodule.describe()
        facts = {"dataset": described["dataset"], "domain": described["domain"], "arch": self.config.model.arch, "task": described["task"]}
        return make_run_logger(organised(options, facts), self.config.run_id, self.run_folder.path, eager=rank_zero_only.rank == 0)

    def session(self) -> RunSession:
        return RunSession(
            facts=self.facts,
            folder=self.run_folder,
            trainer=self.trainer,
            model=self.model,
            datamodule=self.datamodule,
            claim=self.claim,
            program=PROG,
            last_seen=self.last_seen,
            wandb_artifacts=bool(self.config.wandb.artifacts),
        )
