"""``lightning-dims fit``: train one architecture on one dataset task, test it, write its results record.

A LightningCLI over :class:`~lightning_dims.models.ImageClassifier` and
:class:`~lightning_dims.data.DimsDataModule` (``--model.*``, ``--data.*``, ``--trainer.*``,
``--config FILE``), with the data's channels and classes linked into the model. One run:

1. fit (resuming from ``--ckpt_path last`` or a path when given);
2. test the final weights on the held-out test set (``--test_best true``: also the best-val weights);
3. on global rank 0, write the results record (:mod:`lightning_dims.records`), with every callback's
   ``results_record_fields()`` merged in.

Presets (``--preset``) are defaults, so anything given explicitly wins:

* ``paper`` (default): the paper's protocol (paper.md §4) for ``--model.arch`` on ``--data.name``:
  Adam lr (1e-3 ResNets, 1e-4 VGGs, 1e-6 VGG on SVHN), weight decay 1e-4, batch size (ResNet-18 40,
  ResNet-34 25, ResNet-50 12, VGG 6), 100 epochs, 224 px, test set 750, max-255 intensities.
* ``none``: the classes' own defaults.

Always: ``--seed_everything`` defaults to ``--data.seed``; on a CUDA GPU precision defaults to
``bf16-mixed`` (``16-mixed`` where bfloat16 is unsupported), elsewhere 32-bit.

Folders and logging: see :mod:`lightning_dims.runs` (one folder per run, W&B online when
configured, offline otherwise). Multi-GPU: ``--trainer.devices N --trainer.strategy ddp``.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_dims.data import DimsDataModule
from lightning_dims.models import ImageClassifier
from lightning_dims.models.presets import mixed_precision, paper_defaults
from lightning_dims.records import EvalMetrics, build_record, callback_fields, is_finished, record_path, write_record
from lightning_dims.runs import (
    RUN_ID_ENV,
    RunConfigSaver,
    WandbOptions,
    finish_wandb,
    make_run_logger,
    new_run_id,
    resolve_run_id,
    wandb_summary,
)

PRESETS = ("paper", "none")
PROG = "lightning-dims fit"


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the field and the fix."""


def derived_defaults(config: Any, cuda_available: bool, bf16_supported: bool) -> dict[str, object]:
    """Defaults that depend on other settings (first parse): the preset, the seed, the precision."""
    defaults: dict[str, object] = {"seed_everything": int(config.data.seed)}
    if config.preset == "paper":
        defaults.update(paper_defaults(config.model.arch, config.data.name))
    precision = mixed_precision(config.trainer.accelerator, cuda_available, bf16_supported)
    if precision is not None:
        defaults["trainer.precision"] = precision
    return defaults


def without_print_config(args: list[str]) -> list[str]:
    """``args`` minus ``--print_config[=...]`` (the first, defaults-finding parse must not print and exit)."""
    return [arg for arg in args if arg != "--print_config" and not arg.startswith("--print_config=")]


def eval_metrics(metrics: dict[str, Any], stage: str) -> EvalMetrics | None:
    """``{stage}/loss``, ``/acc``, ``/auroc`` from ``trainer.callback_metrics``; None when not logged."""
    values = {name: metrics.get(f"{stage}/{name}") for name in ("loss", "acc", "auroc")}
    if values["loss"] is None and values["acc"] is None:
        return None
    return EvalMetrics(**{name: None if value is None else float(value) for name, value in values.items()})


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def parser_error_line(error: BaseException) -> str:
    """jsonargparse's multi-line error as one line: ``field: what was expected; Given value: ...``."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    match = re.fullmatch(r'Parser key "(.+)":', lines[0])
    if not match or len(lines) == 1:
        return lines[0]
    given = next((line for line in lines[2:] if line.startswith("Given value:")), None)
    return f"{match.group(1)}: {lines[1]}" + (f"; {given}" if given else "")


class FitCLI(LightningCLI):
    """The LightningCLI of ``lightning-dims fit`` (no subcommands: parsing instantiates, :func:`run` trains)."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(
            model_class=ImageClassifier,
            datamodule_class=DimsDataModule,
            save_config_callback=RunConfigSaver,
            parser_kwargs={"prog": PROG, "description": __doc__.split("\n\n")[0], "exit_on_error": False},
            args=args,
            run=False,
            auto_configure_optimizers=False,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--preset", type=Literal["paper", "none"], default="paper",
            help="default hyperparameters: 'paper' (paper.md §4 for the arch and dataset) or 'none'",
        )  # fmt: skip
        parser.add_argument("--run_dir", type=str, default="runs", help="root folder; each run gets <run_dir>/<run_id>/")
        parser.add_argument("--run_id", type=str | None, default=None, help="default: <arch>-<data>-n<N>-s<seed>-<time>-<hex>")
        parser.add_argument("--results_dir", type=str | None, default=None, help="where the record goes (default: the run folder)")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="resume: 'last' or a checkpoint path")
        parser.add_argument("--test_best", type=bool, default=False, help="also test the best-val-loss weights")
        parser.add_argument(
            "--data_properties", type=bool, default=True,
            help="measure K_F and d_data of the training set (DataPropertiesCallback) into W&B and the record",
        )  # fmt: skip
        parser.add_class_arguments(WandbOptions, "wandb")
        parser.link_arguments("data.in_chans", "model.in_chans", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse twice: the first parse finds the arch/dataset/accelerator that the defaults depend on."""
        args = sys.argv[1:] if args is None else list(args)
        first = parser.parse_args(without_print_config(args))
        cuda = torch.cuda.is_available()
        parser.set_defaults(derived_defaults(first, cuda, cuda and torch.cuda.is_bf16_supported()))
        self.config = parser.parse_args(args)

    def before_instantiate_classes(self) -> None:
        config = self.config
        if config.trainer.default_root_dir is not None:
            raise ConfigError("trainer.default_root_dir is set by lightning-dims: use --run_dir (runs go to <run_dir>/<run_id>/)")
        default = new_run_id(config.model.arch, config.data.name, config.data.train_size, config.data.seed)
        config.run_id = resolve_run_id(config.run_id, default)
        os.environ[RUN_ID_ENV] = config.run_id  # DDP workers re-run this command: same id, same folder
        self.run_folder = Path(config.run_dir) / config.run_id
        self.record_file = record_path(config.results_dir or self.run_folder, config.run_id)
        if self.record_file.exists() and is_finished(self.record_file) and not config.ckpt_path:
            raise ConfigError(
                f"run_id {config.run_id!r} already has a finished results record at {self.record_file}: "
                "choose another --run_id, or resume it with --ckpt_path last"
            )

    def instantiate_trainer(self, **kwargs: Any):
        if not self.datamodule.hparams.download:  # bad classes/sizes/missing files: fail before W&B starts
            self.datamodule.setup("fit")
        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks = list(trainer_config.get("callbacks") or [])
        if trainer_config.get("enable_checkpointing") is not False and not any(
            isinstance(callback, ModelCheckpoint) for callback in callbacks
        ):
            callbacks.extend(self.default_checkpoints())
        if self.config.data_properties:
            from lightning_dims.callbacks import DataPropertiesCallback

            if not any(isinstance(callback, DataPropertiesCallback) for callback in callbacks):
                callbacks.append(DataPropertiesCallback())
        kwargs["callbacks"] = callbacks
        kwargs["default_root_dir"] = str(self.run_folder)
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = self.default_logger()
        return super().instantiate_trainer(**kwargs)

    def default_checkpoints(self) -> list[ModelCheckpoint]:
        """The best-val-loss checkpoint (when there is a validation set) and ``last.ckpt`` every epoch.

        ``last.ckpt`` is its own callback because Lightning writes ``save_last`` only when a top-k
        checkpoint is saved, i.e. when val loss improves; resuming and the paper (which keeps the
        last epoch) need the weights of every final epoch.
        """
        folder = self.run_folder / "checkpoints"
        last = ModelCheckpoint(dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
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
        return make_run_logger(options, self.config.run_id, self.run_folder, eager=rank_zero_only.rank == 0)


def run(cli: FitCLI) -> Path | None:
    """Fit, test, and write the record (rank 0); returns the record path on rank 0, else None."""
    trainer, model, datamodule, config = cli.trainer, cli.model, cli.datamodule, cli.config
    started, started_at = time.perf_counter(), _utc_now()
    status, error = "finished", None
    val = test = test_best = None
    contributions: dict[str, Any] = {}
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=config.ckpt_path)
        if trainer.interrupted:
            status = "interrupted"
        else:
            val = eval_metrics(dict(trainer.callback_metrics), "val")
            trainer.test(model, datamodule=datamodule, verbose=trainer.is_global_zero)
            test = eval_metrics(dict(trainer.callback_metrics), "test")
            contributions = callback_fields(trainer.callbacks)  # before a best-weights test replaces state
            best = trainer.checkpoint_callback
            if config.test_best and getattr(best, "monitor", None) and getattr(best, "best_model_path", ""):
                trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
                test_best = eval_metrics(dict(trainer.callback_metrics), "test")
    except BaseException as caught:
        status = "interrupted" if isinstance(caught, (KeyboardInterrupt, SystemExit)) else "failed"
        error = "".join(traceback.format_exception_only(type(caught), caught)).strip()
        raise
    finally:
        path = None
        if trainer.is_global_zero:
            if status != "finished":  # keep what the callbacks measured before the run stopped
                contributions = callback_fields(trainer.callbacks)
            base = base_record(cli, status, error, started_at, time.perf_counter() - started)
            base.update(val=val, test=test, test_best=test_best)
            path = write_record(cli.record_file, build_record(base, contributions), exist="version")
            print(f"{PROG}: {status}; results record: {path}", file=sys.stderr)
        finish_wandb(trainer.loggers)
    return path


def last_checkpoint(callbacks: list) -> str | None:
    """Path of the final weights: our ``last`` checkpoint, else any callback's ``last_model_path``."""
    for callback in callbacks:
        if getattr(callback, "filename", None) == "last" and callback.best_model_path:
            return callback.best_model_path
    return next((cb.last_model_path for cb in callbacks if getattr(cb, "last_model_path", "")), None)


def base_record(cli: FitCLI, status: str, error: str | None, started_at: str, seconds: float) -> dict[str, Any]:
    """The record fields the trainer knows (callbacks add theirs)."""
    import lightning
    import torchvision

    from lightning_dims import __version__

    trainer, model, datamodule, config = cli.trainer, cli.model, cli.datamodule, cli.config
    try:
        described = datamodule.describe()
    except Exception as describe_error:  # e.g. the data never loaded: record what the config says
        described = {
            "dataset": config.data.name,
            "classes": config.data.classes,
            "split_sizes": {"train": config.data.train_size},
            "preprocessing": {},
            "describe_error": first_line(describe_error),
        }
    sizes = described.get("split_sizes", {})
    checkpoint = last_checkpoint(trainer.checkpoint_callbacks)
    return {
        "run_id": config.run_id,
        "status": status,
        "dataset": described["dataset"],
        "domain": described.get("domain"),
        "classes": described.get("classes"),
        "arch": config.model.arch,
        "n_train": sizes.get("train", config.data.train_size),
        "n_val": sizes.get("val"),
        "n_test": sizes.get("test"),
        "seed": config.data.seed,
        "preprocessing": described.get("preprocessing", {}),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "hparams": {
            "preset": config.preset,
            "lr": model.lr,
            "weight_decay": model.hparams.weight_decay,
            "batch_size": datamodule.batch_size,
            "max_epochs": trainer.max_epochs,
            "precision": str(trainer.precision),
            "head_size": model.head_size,
            "pretrained": model.hparams.pretrained,
            "seed_everything": config.seed_everything,
            "world_size": trainer.world_size,
            "resumed_from": config.ckpt_path,
        },
        "wall_time_s": seconds,
        "started_at": started_at,
        "finished_at": _utc_now(),
        "checkpoint": checkpoint,
        "wandb": wandb_summary(trainer.loggers),
        "versions": {
            "lightning_dims": __version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "lightning": lightning.__version__,
        },
        "error": error,
        "extra": {"data": {key: described[key] for key in ("class_names", "options", "source") if key in described}},
    }


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[2:] if argv is None else list(argv)
    launched_id = os.environ.get(RUN_ID_ENV)
    try:
        try:
            cli = FitCLI(argv)
        except (ValueError, FileNotFoundError) as error:  # config values the classes refuse; missing data
            print(f"{PROG}: error: {str(error).strip()}", file=sys.stderr)
            return 2
        except Exception as error:  # jsonargparse's ArgumentError (exit_on_error=False): one line, no traceback
            if type(error).__name__ != "ArgumentError":
                raise
            print(f"{PROG}: error: {parser_error_line(error)}", file=sys.stderr)
            return 2
        run(cli)
        return 0
    finally:
        if launched_id is None:
            os.environ.pop(RUN_ID_ENV, None)
