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

import sys

from lightning_dims.cli import user_errors
from lightning_dims.errors import ConfigError, LightningDimsError
from lightning_dims.training.fit_cli import PROG, FitCLI

__all__ = ["main", "run"]


def run(cli: FitCLI) -> None:
    """Fit, test the final weights, optionally the best-val weights; the record is written on every exit path."""
    assert cli.run is not None
    cli.run.execute(cli.trainer, cli.model, cli.datamodule)


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[2:] if argv is None else list(argv)
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
        if cli is not None and cli.run is not None:
            cli.run.close()  # a failure before training must not leave the run claimed
