"""``fit`` command lines resolved to configs without building, training or writing anything.

For checking configs and sweep commands cheaply (``sweep --dry-run``, ``test``/``validate``,
``tests/test_configs.py``): the same parser, both parses, the preset and the derived defaults as
``lightning-dims fit``, so a command that parses here parses there.
"""

from __future__ import annotations

import json
from typing import Any

from lightning_dims.training.fit_cli import FitCLI

__all__ = ["FitConfigParser"]


class _Parsed(Exception):
    """Carries the parse-only CLI out of LightningCLI's constructor."""

    def __init__(self, cli: FitCLI):
        self.cli = cli


class _ParseOnlyCLI(FitCLI):
    """A :class:`FitCLI` that stops after parsing.

    LightningCLI has no public parse-only mode: its constructor builds the parser, parses, then
    instantiates the model, data and trainer. ``before_instantiate_classes`` is the one hook
    between parsing and instantiating, so it raises :class:`_Parsed` carrying the parsed CLI,
    before ``fit``'s own checks there (which look at the run folder) and before anything is built.
    """

    def before_instantiate_classes(self) -> None:
        raise _Parsed(self)


class FitConfigParser:
    """Resolves ``fit`` command lines to configs (both parses, preset and derived defaults) without
    instantiating, training or writing anything: for checking configs and sweep commands cheaply.

    The parser is built once and reused; each :meth:`parse` starts from its original defaults.
    Raises the same errors as ``fit`` for values the parser refuses.
    """

    def __init__(self):
        try:
            _ParseOnlyCLI([])
        except _Parsed as parsed:
            self._cli = parsed.cli

    @property
    def parser(self) -> Any:
        """The ``fit`` parser itself (a ``LightningArgumentParser``), its defaults as ``fit`` builds them."""
        self._cli.parser.set_defaults({key: self._cli.base_defaults.get(key) for key in self._cli.derived})
        return self._cli.parser

    def dump(self, config: Any) -> dict:
        """A resolved config as plain data (for comparing two command lines)."""
        return json.loads(self._cli.parser.dump(config, format="json", skip_unset=False))

    def instantiate(self, config: Any) -> Any:
        """The config with its classes built (``.model``, ``.data``; the data's channels and classes linked into the model)."""
        return self._cli.parser.instantiate_classes(config)

    def parse(self, args: list[str]) -> Any:
        self._cli.parse_arguments(self.parser, list(args))
        return self._cli.config
