"""The ``fit`` parser's keys, value types and ``--help`` text as data, so mistakes are caught before torch loads.

``lightning-dims fit`` is a LightningCLI: building its parser imports torch, Lightning and W&B
(several seconds). :mod:`~lightning_dims.training.precheck` checks a command line against this
schema first, with nothing but the standard library and PyYAML. The schema is generated from the
live parser (:func:`build_schema`) and committed as ``fit_schema.json`` beside this module;
``tests/test_precheck.py`` regenerates it and fails when the two differ (after a change to the
model, the data module, Lightning or jsonargparse: run ``python -m lightning_dims.training.schema``).

Per key (dotted, as on the command line) the schema holds ``accepts``: the value kinds the parser
takes, a list drawn from ``int float bool str null dict list[int] list[str]`` and
``{"literal": [...]}``; or null when the type holds a class (``trainer.callbacks``,
``optimizer``), a path or a time span, which only the real parser can judge. ``open`` lists the
keys that take sub-keys the schema cannot know (a class's ``init_args``, a dict). ``help`` is the
text ``lightning-dims fit --help`` prints, rendered :data:`HELP_COLUMNS` columns wide.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["HELP_COLUMNS", "SCHEMA_FILE", "build_schema", "load_schema", "type_accepts", "write_schema"]

SCHEMA_FILE = Path(__file__).with_name("fit_schema.json")
HELP_COLUMNS = 100
"""Width of the stored ``--help`` text (argparse reads ``COLUMNS``)."""

_SIMPLE = {int: "int", float: "float", bool: "bool", str: "str", type(None): "null", dict: "dict"}


def type_accepts(hint: Any) -> list | None:
    """The value kinds a type hint accepts (module docstring), or None when only the real parser can judge it."""
    if hint in _SIMPLE:
        return [_SIMPLE[hint]]
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return [{"literal": list(typing.get_args(hint))}]
    if origin in (typing.Union, types.UnionType):
        kinds: list = []
        for member in typing.get_args(hint):
            accepted = type_accepts(member)
            if accepted is None:
                return None
            kinds += [kind for kind in accepted if kind not in kinds]
        return kinds
    if origin is list and typing.get_args(hint) in ((int,), (str,)):
        return [f"list[{typing.get_args(hint)[0].__name__}]"]
    if origin is dict:
        return ["dict"]
    return None


def _takes_sub_keys(hint: Any) -> bool:
    """A key whose value is a class (``class_path``/``init_args``) or a dict: its sub-keys are not in the parser."""
    accepted = type_accepts(hint)
    return accepted is None or "dict" in accepted


def build_schema() -> dict[str, Any]:
    """The schema of the live ``fit`` parser (imports torch, Lightning and W&B)."""
    from lightning_dims.training.config_parser import FitConfigParser

    parser = FitConfigParser().parser
    keys: dict[str, Any] = {}
    groups, open_keys = [], []
    for action in parser._actions:  # noqa: SLF001 -- argparse has no public list of actions
        dest = action.dest
        kind = type(action).__name__
        if kind == "_ActionConfigLoad":
            groups.append(dest)
        elif dest in ("help", "config", "print_config", "print_shtab") or dest.endswith(".help"):
            continue
        else:
            hint = getattr(action, "_typehint", None)
            keys[dest] = {"accepts": type_accepts(hint) if hint is not None else None}
            if hint is None or _takes_sub_keys(hint):
                open_keys.append(dest)
    return {"keys": keys, "groups": sorted(groups), "open": sorted(open_keys), "help": _help_text(parser)}


def _help_text(parser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_COLUMNS)
    try:
        return parser.format_help()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = previous


def load_schema() -> dict[str, Any]:
    """The committed schema (``fit_schema.json``)."""
    return json.loads(SCHEMA_FILE.read_text())


def write_schema(path: Path = SCHEMA_FILE) -> None:
    """Regenerate the committed schema from the live parser."""
    with contextlib.redirect_stdout(io.StringIO()):  # seed_everything's "Seed set to 0"
        schema = build_schema()
    path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_schema()
    print(f"wrote {SCHEMA_FILE}")
