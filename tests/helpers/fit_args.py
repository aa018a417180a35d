"""``lightning-dims fit`` argument lists for the tests: a quiet CPU trainer and digits 3 vs 8.

digits has 174 eights, so ``train + val + test <= 348`` for a balanced pair of classes.
"""

from __future__ import annotations

from pathlib import Path

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu"]
"""No progress bar, no model summary, CPU: what every fit a test starts shares."""


def digits_fit_args(
    run_dir: Path,
    run_id: str,
    *,
    train: int,
    val: int,
    test: int,
    epochs: int,
    batch: int,
    size: int = 32,
    arch: str = "resnet18",
    log_every_step: bool = True,
    extra: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """``fit`` arguments: ``arch`` on digits 3 vs 8 at ``size`` px with ``extra``, ending in ``--run_dir``,
    ``--run_id`` (a test may cut them off); ``log_every_step`` logs training metrics at every step
    (else at Lightning's default, every 50)."""
    logging = ["--trainer.log_every_n_steps", "1"] if log_every_step else []
    return [
        "--model.arch", arch, "--data.name", "digits", "--data.classes", "[3,8]",
        "--data.train_size", str(train), "--data.val_size", str(val), "--data.test_size", str(test),
        "--data.size", str(size), "--data.batch_size", str(batch), "--trainer.max_epochs", str(epochs),
        *logging, *QUIET, *extra, "--run_dir", str(run_dir), "--run_id", run_id,
    ]  # fmt: skip
