"""``lightning-dims fit``: train one architecture on one dataset task, test it, write its results record.

A LightningCLI over :class:`~lightning_dims.models.ImageClassifier` and
:class:`~lightning_dims.data.DimsDataModule` (``--model.*``, ``--data.*``, ``--trainer.*``,
``--config FILE``), with the data's channels and classes linked into the model. One run:
fit (resuming with ``--ckpt_path last``), test the final weights (``--test_best true``: also the
best-val weights, logged as ``test_best/*``), and on global rank 0 write the results record.

``--preset paper`` (the default) takes the paper's protocol for ``--model.arch`` on
``--data.name`` from the shipped files ``lightning_dims/configs/protocol/`` as defaults, so anything
given explicitly wins; ``--preset none`` keeps the classes' own defaults. ``--config`` accepts a
file or the name of a shipped config (``callbacks/fast``, ``protocol/paper``). Always:
``--seed_everything`` defaults to ``--data.seed``; on a CUDA GPU precision defaults to ``bf16-mixed``.

Identity and integrity (``lightning_dims.runs``): the run owns ``<run_dir>/<run_id>/``; its
``config_hash`` covers every setting that can change a result and the data's content; only one
process works on a run at a time (its claim); a finished run is never run again, a resume
whose config differs from its checkpoint's is refused naming the keys, and a resumed run ends
with the numbers of an uninterrupted one.
"""

from __future__ import annotations

import os
import sys

from lightning_dims.cli import user_errors
from lightning_dims.errors import ConfigError, LightningDimsError
from lightning_dims.records.build import eval_metrics
from lightning_dims.records.contributions import callback_fields
from lightning_dims.runs.identity import RUN_ID_ENV
from lightning_dims.runs.lifecycle import recorded_run
from lightning_dims.training.fit_cli import PROG, FitCLI


def run(cli: FitCLI) -> None:
    """Fit, test the final weights, optionally the best-val weights; the record is written on every exit path."""
    trainer, model, datamodule, config = cli.trainer, cli.model, cli.datamodule, cli.config
    with recorded_run(cli.session()) as outcome:
        trainer.fit(model, datamodule=datamodule, ckpt_path=config.ckpt_path)
        if trainer.interrupted:
            return
        outcome.evaluations.val = eval_metrics(trainer.callback_metrics, "val")
        if outcome.evaluations.val is None and datamodule.hparams.val_size > 0:
            # resumed after its last epoch (killed while testing): nothing trained or validated in this process
            trainer.validate(model, datamodule=datamodule, verbose=False)
            outcome.evaluations.val = eval_metrics(trainer.callback_metrics, "val")
        trainer.test(model, datamodule=datamodule, verbose=trainer.is_global_zero)
        outcome.evaluations.test = eval_metrics(trainer.callback_metrics, "test")
        outcome.contributions = callback_fields(trainer.callbacks)  # before the best weights replace the final ones
        best = trainer.checkpoint_callback
        if config.test_best and getattr(best, "monitor", None) and getattr(best, "best_model_path", ""):
            model.test_prefix = "test_best"
            trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
            outcome.evaluations.test_best = eval_metrics(trainer.callback_metrics, "test_best")


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[2:] if argv is None else list(argv)
    launched_id = os.environ.get(RUN_ID_ENV)
    cli = None
    try:
        try:
            cli = FitCLI(argv)
        except (ValueError, FileNotFoundError) as error:  # values the classes refuse, missing data
            if isinstance(error, LightningDimsError):
                raise
            raise ConfigError(str(error).strip()) from None
        run(cli)
        return 0
    finally:
        if cli is not None and cli.claim is not None:
            cli.claim.release()  # a failure before training must not leave the run claimed
        if launched_id is None:
            os.environ.pop(RUN_ID_ENV, None)
