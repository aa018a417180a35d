"""Callbacks that crash their own process once, for the resume tests (class paths ``tests.helpers.kill_callback.*``).

Each takes a ``marker`` file: it strikes only while the marker does not exist, and creates it
first. The same callback (same config, same ``config_hash``) is then harmless in the resumed
attempt, which a resume with a different config would not be allowed to be.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback


def strike_once(marker: str | None) -> bool:
    """True the first time (creating ``marker``); False when the marker already exists."""
    if marker is None:
        return True
    path = Path(marker)
    if path.exists():
        return False
    path.write_text("struck\n")
    return True


class KillAtEpoch(Callback):
    """SIGKILL the process at the start of epoch ``epoch`` (0-based), i.e. after ``epoch`` finished epochs."""

    def __init__(self, epoch: int = 1, marker: str | None = None):
        self.epoch = epoch
        self.marker = marker

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch and strike_once(self.marker):
            os.kill(os.getpid(), signal.SIGKILL)


class KillAtTest(Callback):
    """SIGKILL the process when testing starts: training, d_repr and the FGSM attack are done, no record yet."""

    def __init__(self, marker: str | None = None):
        self.marker = marker

    def on_test_start(self, trainer, pl_module) -> None:
        if strike_once(self.marker):
            os.kill(os.getpid(), signal.SIGKILL)


class RaiseAtEpoch(Callback):
    """Raise ``RuntimeError`` at the start of epoch ``epoch`` (0-based): a run that fails."""

    def __init__(self, epoch: int = 1, marker: str | None = None):
        self.epoch = epoch
        self.marker = marker

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch and strike_once(self.marker):
            raise RuntimeError(f"injected failure at epoch {trainer.current_epoch}")


class PauseAtEpoch(Callback):
    """Hold the run at the start of epoch ``epoch`` (``last.ckpt`` of the epoch before is written) until
    it receives SIGTERM or ``seconds`` pass, so a test can signal it at a known point. Writes the run
    folder into ``marker`` when it starts holding."""

    def __init__(self, epoch: int = 1, marker: str | None = None, seconds: float = 300.0):
        self.epoch = epoch
        self.marker = marker
        self.seconds = seconds

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        import time

        if trainer.current_epoch >= self.epoch and strike_once(self.marker):
            Path(f"{self.marker}.run").write_text(str(trainer.default_root_dir))
            deadline = time.monotonic() + self.seconds
            while not trainer.received_sigterm and time.monotonic() < deadline:
                time.sleep(0.1)
