"""The per-run config file: the parsed CLI config saved into the run folder and into W&B.

Resuming a run (same ``--run_id``) reuses its folder; a config that differs from the one already
saved there is written as ``config.v2.yaml`` (``v3``, ...) instead of overwriting the first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lightning.pytorch.cli import SaveConfigCallback
from typing_extensions import override

__all__ = ["RunConfigSaver", "free_config_name"]


def free_config_name(folder: Path, content: str, name: str = "config.yaml") -> tuple[str, bool]:
    """(file name, overwrite) for saving ``content`` in ``folder`` without losing an earlier config.

    The name itself when free; the same name (rewriting identical bytes) when it already holds
    ``content``; else the first free ``config.v2.yaml``, ``config.v3.yaml``, ...
    """
    path = folder / name
    if not path.exists():
        return name, False
    if path.read_text() == content:
        return name, True
    stem, suffix = os.path.splitext(name)
    version = 2
    while (folder / f"{stem}.v{version}{suffix}").exists():
        if (folder / f"{stem}.v{version}{suffix}").read_text() == content:
            return f"{stem}.v{version}{suffix}", True
        version += 1
    return f"{stem}.v{version}{suffix}", False


class RunConfigSaver(SaveConfigCallback):
    """Saves the CLI config into the run folder (never over a different earlier one) and into W&B."""

    @override
    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir:
            log_dir, choice = Path(trainer.log_dir), None  # trainer.log_dir is a collective call: all ranks
            if trainer.is_global_zero:
                choice = free_config_name(log_dir, self.parser.dump(self.config, skip_unset=False))
            self.config_filename, self.overwrite = trainer.strategy.broadcast(choice)
        super().setup(trainer, pl_module, stage)

    @override
    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = self.parser.dump(self.config, skip_unset=False, format="json")
        for logger in trainer.loggers:
            logger.log_hyperparams({"cli": json.loads(config)})
