"""A callback that SIGKILLs its own process when an epoch starts: a crash with no cleanup at all,
used by the resume test (``--trainer.callbacks`` class path ``kill_callback.KillAtEpoch``)."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class KillAtEpoch(Callback):
    """Kill the process at the start of epoch ``epoch`` (0-based), i.e. after ``epoch`` finished epochs."""

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class RaiseAtEpoch(Callback):
    """Raise ``RuntimeError`` at the start of epoch ``epoch`` (0-based): a run that fails."""

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            raise RuntimeError(f"injected failure at epoch {trainer.current_epoch}")
