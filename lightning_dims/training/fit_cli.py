"""The LightningCLI of ``lightning-dims fit``: it parses and builds the model and data; the run itself is ``Run``'s.

:class:`FitCLI` parses twice (argv normalised by :mod:`~lightning_dims.training.argv`; the first
parse finds what :func:`~lightning_dims.models.presets.derived_defaults` depend on). The run policy
(refusals, run id, resume, ``config_hash``, claim, the callbacks and logger every run has, the
recorded run) is :class:`~lightning_dims.training.run.Run`'s, the same for a run started from Python.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_dims.compat import cli_config_value
from lightning_dims.data import DimsDataModule
from lightning_dims.errors import ConfigError
from lightning_dims.models import ImageClassifier
from lightning_dims.models.presets import derived_defaults
from lightning_dims.runs.config_files import RunConfigSaver
from lightning_dims.tracking.run import WandbOptions
from lightning_dims.training.argv import agent_values, expand_config_names, without_print_config
from lightning_dims.training.run import PROG, Run, RunOptions

__all__ = ["PROG", "FitCLI"]



class FitCLI(LightningCLI):
    """The LightningCLI of ``lightning-dims fit`` (no subcommands: parsing instantiates, :func:`run` trains)."""

    def __init__(self, args: list[str]) -> None:
        self.derived: dict[str, object] = {}
        self.run: Run | None = None
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
            if self.run is not None:  # e.g. the logger failed after the run was claimed
                self.run.close()
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
        """Checks that need no data (:meth:`Run.admit <lightning_dims.training.run.Run.admit>`): folders, epochs, the run id, runs that must not start again."""
        config = self.config
        if config.get("lr_scheduler") is not None and config.get("optimizer") is None:
            raise ConfigError(
                "--lr_scheduler needs --optimizer: LightningCLI schedules only an optimizer it builds; give both, e.g. "
                "--optimizer Adam --optimizer.lr 0.001 --optimizer.weight_decay 0.0001 --lr_scheduler CosineAnnealingLR "
                "--lr_scheduler.T_max 100"
            )
        options = RunOptions(
            run_dir=config.run_dir, run_id=config.run_id, results_dir=config.results_dir, ckpt_path=config.ckpt_path,
            test_best=config.test_best, data_properties=config.data_properties, wandb=WandbOptions(**dict(config.wandb)),
        )  # fmt: skip
        plain = json.loads(self.parser.dump(config, format="json", skip_unset=False))
        self.run = Run(plain, options, derived=self.derived, preset=config.preset)
        self.run.admit()
        config.run_id, config.ckpt_path = options.run_id, options.ckpt_path  # the saved config.yaml names them

    def instantiate_trainer(self, **kwargs: Any):
        """The trainer with the run's callbacks, folder and logger (:meth:`Run.trainer_arguments <lightning_dims.training.run.Run.trainer_arguments>`)."""
        trainer_config = cli_config_value(self, self.config_init, "trainer", default={})
        kwargs.update(
            self.run.trainer_arguments(
                self.model, self.datamodule, list(trainer_config.get("callbacks") or []),
                logger=trainer_config.get("logger"), enable_checkpointing=trainer_config.get("enable_checkpointing"),
            )
        )  # fmt: skip
        return super().instantiate_trainer(**kwargs)
