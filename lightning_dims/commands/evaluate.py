"""``lightning-dims validate`` and ``lightning-dims test``: a checkpoint on its run's validation or test split.

LightningCLI's ``validate``/``test`` subcommands, for checkpoints of ``lightning-dims fit``::

    lightning-dims test --config runs/<run_id>/config.yaml --ckpt_path runs/<run_id>/checkpoints/last.ckpt
    lightning-dims validate --config runs/<run_id>/config.yaml --ckpt_path .../best-epoch003-val_loss0.1234.ckpt --json

The run's saved ``config.yaml`` is parsed by the fit parser (the same preset and derived
defaults; any ``--model.*``/``--data.*``/``--trainer.*`` option may follow it), the model and the
data module are built from it, and Lightning loads the checkpoint's weights
(``Trainer.validate``/``Trainer.test`` with ``ckpt_path``) on one device, without loggers or
callbacks. Printed: ``<split>/loss`` (mean cross-entropy, nats per image), ``/acc`` and ``/auroc``
(``--json``: one JSON object). Nothing is written: no run folder, record or W&B run.

A checkpoint trained under another model or data config than the one given (its ``config_hash``
stamp, :mod:`lightning_dims.runs.reproducibility`) is refused, naming the keys: its numbers would
belong to no run. Trainer settings (accelerator, precision) may differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Literal

from lightning_dims.cli import user_errors
from lightning_dims.errors import ConfigError

__all__ = [
    "CHECKED_PREFIXES",
    "SPLIT",
    "Stage",
    "build_parser",
    "config_conflicts",
    "evaluate",
    "main_for",
    "test",
    "validate",
]

Stage = Literal["validate", "test"]
SPLIT = {"validate": "val", "test": "test"}
"""The split each subcommand evaluates, as its metrics are named (``val/loss``, ``test/loss``)."""

CHECKED_PREFIXES = ("model.", "data.")
"""Config keys a checkpoint must agree on with the config it is evaluated under (the network and the data)."""


def build_parser(stage: Stage) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"lightning-dims {stage}",
        description=f"evaluate a fit checkpoint on its run's {SPLIT[stage]} split; other options go to the fit parser",
    )
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint (e.g. runs/<run_id>/checkpoints/last.ckpt)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def config_conflicts(stamp: dict | None, config: dict) -> list[str]:
    """``key: checkpoint -> given`` for each model/data key where the checkpoint's stamp and ``config`` differ."""
    from lightning_dims.runs.identity import differing_keys

    if stamp is None or stamp.get("config") is None:
        return []
    checked = lambda flat: {key: value for key, value in flat.items() if key.startswith(CHECKED_PREFIXES)}  # noqa: E731
    return differing_keys(checked(stamp["config"]), checked(config))


def evaluate(stage: Stage, checkpoint: Path, fit_args: list[str]) -> dict[str, float | None]:
    """``{"<split>/loss": ..., "/acc", "/auroc"}`` of ``checkpoint`` under the fit config ``fit_args``."""
    from lightning.pytorch import Trainer

    from lightning_dims.records.build import eval_metrics
    from lightning_dims.runs.identity import changes_text, result_config
    from lightning_dims.runs.reproducibility import checkpoint_identity
    from lightning_dims.training.config_parser import FitConfigParser

    if not checkpoint.is_file():
        raise ConfigError(f"--ckpt_path {checkpoint}: no such checkpoint file")
    parser = FitConfigParser()
    config = parser.parse(fit_args)
    built = parser.instantiate(config)
    model, datamodule = built.model, built.data
    datamodule.setup("fit" if stage == "validate" else "test")
    conflicts = config_conflicts(checkpoint_identity(checkpoint), result_config(parser.dump(config), datamodule.data_fingerprint()))
    if conflicts:
        shown = changes_text(conflicts)
        raise ConfigError(
            f"{checkpoint} was trained under another model/data config: {shown}. Give the run's own config "
            "(--config runs/<run_id>/config.yaml)"
        )
    trainer = Trainer(
        accelerator=config.trainer.accelerator, devices=1, precision=config.trainer.precision, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[],
    )  # fmt: skip
    run = trainer.validate if stage == "validate" else trainer.test
    run(model, datamodule=datamodule, ckpt_path=str(checkpoint), verbose=False)
    split = SPLIT[stage]
    metrics = eval_metrics(trainer.callback_metrics, split)
    if metrics is None:
        raise ConfigError(f"the {split} split is empty (data.{split}_size 0): nothing to {stage}")
    return {f"{split}/{name}": value for name, value in metrics.model_dump().items()}


def main_for(stage: Stage, argv: list[str] | None) -> int:
    args, fit_args = build_parser(stage).parse_known_args(argv)
    try:
        metrics = evaluate(stage, Path(args.ckpt_path), fit_args)
    except (ValueError, FileNotFoundError) as error:  # values the classes refuse, missing data
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(str(error).strip()) from None
    if args.json:
        print(json.dumps({"checkpoint": args.ckpt_path, **metrics}))
    else:
        print("  ".join(f"{key} {value:.6g}" for key, value in metrics.items() if value is not None))
    return 0


@user_errors("lightning-dims validate")
def validate(argv: list[str] | None = None) -> int:
    return main_for("validate", sys.argv[2:] if argv is None else list(argv))


@user_errors("lightning-dims test")
def test(argv: list[str] | None = None) -> int:
    return main_for("test", sys.argv[2:] if argv is None else list(argv))


test.__test__ = False  # a subcommand, not a pytest test
