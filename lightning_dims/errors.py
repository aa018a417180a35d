"""The error every command reports as one line: bad input or a refused operation, with the fix.

Typed errors of the domains (``MissingDatasetError``, ``ManifestError``, ``SweepFileError``,
``ConfigError``, ``RecordExistsError``, ``ClaimHeldError``, ...) derive from
:class:`LightningDimsError` as well as from the built-in exception they refine, so callers may
catch either. :func:`lightning_dims.cli.user_errors` turns them into ``lightning-dims <command>:
error: <message>`` and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LightningDimsError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class UsageError(LightningDimsError, ValueError):
    """A command-line value that cannot work."""


class ConfigError(LightningDimsError, ValueError):
    """A configuration value that cannot work, or a run that must not start; the message names the fix."""
