"""Environments for the subprocess tests: a child ``lightning-dims`` process that imports
``tests.helpers.*`` (callbacks given by class path, e.g. ``tests.helpers.kill_callback.KillAtEpoch``)
and starts its own W&B service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The checkout's root: the folder that holds the ``tests`` package."""


def with_helpers_path(pythonpath: str | None) -> str:
    """``pythonpath`` with the checkout's root in front, so ``import tests.helpers.x`` works."""
    return os.pathsep.join(filter(None, [str(REPO), pythonpath]))


def child_env(env: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``env`` (default: this process's) for a child run: ``tests.helpers`` importable, and
    without ``WANDB_SERVICE`` (a child attaching to this process's W&B service would share its state);
    ``extra`` is set last."""
    env = {key: value for key, value in (os.environ if env is None else env).items() if key != "WANDB_SERVICE"}
    env["PYTHONPATH"] = with_helpers_path(env.get("PYTHONPATH"))
    return env | extra
