"""The error every command reports as one line: bad input or a refused operation, with the fix.

Typed errors of the domains (``MissingDatasetError``, ``ManifestError``, ``SweepFileError``,
``ConfigError``, ``RecordExistsError``, ``ClaimHeldError``, ...) derive from
:class:`LightningDimsError` as well as from the built-in exception they refine, so callers may
catch either. :func:`lightning_dims.cli.user_errors` turns them into ``lightning-dims <command>:
error: <message>`` and exit status 2; anything else is a bug and keeps its traceback. An import of
a package that an extra installs (train, W&B, sweeps, attacks, medical) becomes a
:class:`MissingExtraError` naming ``pip install 'lightning-dims[<extra>]'`` (:func:`missing_extra`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "ConfigError", "LightningDimsError", "MissingExtraError", "UsageError", "missing_extra", "require"]


class LightningDimsError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class UsageError(LightningDimsError, ValueError):
    """A command-line value that cannot work."""


class ConfigError(LightningDimsError, ValueError):
    """A configuration value that cannot work, or a run that must not start; the message names the fix."""


EXTRAS: dict[str, str] = {
    "wandb": "wandb",
    "wandb_workspaces": "wandb",
    "submitit": "sweeps",
    "foolbox": "attacks",
    "pydicom": "medical",
    "nibabel": "medical",
    "medmnist": "medical",
    "pandas": "medical",
    "timm": "train",
    "jsonargparse": "train",
    "nilearn": "train",
    "matplotlib": "train",
    "pymare": "train",
    "statsmodels": "train",
}
"""Top-level module -> the ``pyproject.toml`` extra that installs it (the core needs none of them)."""


class MissingExtraError(LightningDimsError, ModuleNotFoundError):
    """A feature whose packages are an extra that is not installed; the message names the ``pip install``."""


def missing_extra(error: ModuleNotFoundError) -> MissingExtraError | None:
    """``error`` (an import of a missing module) as a one-line :class:`MissingExtraError` naming the extra
    that installs the module (:data:`EXTRAS`); None for a module no extra provides."""
    if isinstance(error, MissingExtraError):
        return error
    module = (error.name or "").partition(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    return MissingExtraError(
        f"{module} is not installed; it comes with the '{extra}' extra: pip install 'lightning-dims[{extra}]' "
        "(or 'lightning-dims[all]')",
        name=error.name,
    )


def require(module: str) -> ModuleType:
    """``import module`` for a feature of an extra: a missing one raises :class:`MissingExtraError` naming the install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise (missing_extra(error) or error) from None
