"""Check a ``fit``/``validate``/``test`` command line before torch, Lightning or W&B load.

The dispatcher (:mod:`lightning_dims.cli`) runs these first, so a misspelt key, a bad value, a
missing ``--config`` file or a bad key inside one costs a fraction of a second instead of a full
start. Everything is judged against the committed schema of the live parser
(:mod:`~lightning_dims.training.schema`); what the schema cannot judge (class-valued options such
as ``--trainer.callbacks`` or ``--optimizer``, their ``init_args``, paths) is left to the real
parser, so this check only ever refuses what ``fit`` would refuse too. A plain ``--help`` is
answered from the schema's stored text.

Unknown keys get a did-you-mean from :func:`difflib.get_close_matches`; keys inside a config file
are reported with the file's path. Values are read as the parser reads them (YAML, and a value
as ``wandb agent`` writes it, :func:`~lightning_dims.training.argv.agent_values`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from lightning_dims.configs import load_yaml, resolve_config
from lightning_dims.errors import ConfigError
from lightning_dims.training.argv import agent_values
from lightning_dims.training.schema import load_schema

__all__ = ["check_evaluate_args", "check_fit_args", "fit_help", "suggestion"]

SKIPPED = ("--print_config", "--print_shtab")
"""Options the real parser answers itself (they print and exit)."""

EVALUATE_OWN = {"--ckpt_path": True, "--json": False}
"""``validate``/``test``'s own options (does it take a value), not the fit parser's."""


@cache
def _schema() -> dict[str, Any]:
    return load_schema()


def fit_help() -> str:
    """What ``lightning-dims fit --help`` prints (the stored text of the live parser)."""
    return _schema()["help"]


def suggestion(key: str, known) -> str:
    """`` (did you mean X?)`` for the closest of ``known`` by :func:`difflib.get_close_matches`; '' when none is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _owner(key: str, schema: Mapping) -> str | None:
    """The open key (``optimizer``, ``trainer.callbacks``) that ``key`` lies below, if any."""
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:end]) in schema["open"]:
            return ".".join(parts[:end])
    return None


def _fits(value: Any, kind: Any, text: str | None) -> bool:
    """Whether ``value`` (``text`` as typed, when it came from the command line) is of ``kind``."""
    if isinstance(kind, dict):
        return value in kind["literal"] or (text is not None and text in map(str, kind["literal"]))
    if kind == "str":
        return text is not None or isinstance(value, str)
    if kind == "null":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "float"):
        if isinstance(value, str):
            try:
                value = int(value) if kind == "int" else float(value)
            except ValueError:
                return False
        numeric = (int,) if kind == "int" else (int, float)
        return isinstance(value, numeric) and not isinstance(value, bool)
    if kind == "dict":
        return isinstance(value, dict)
    if kind.startswith("list["):
        item = kind[5:-1]
        return isinstance(value, list) and all(_fits(element, item, None) for element in value)
    return True


def _accepts_text(kinds: list) -> str:
    return " or ".join(f"one of {kind['literal']}" if isinstance(kind, dict) else kind for kind in kinds)


def check_value(key: str, value: Any, text: str | None = None) -> str | None:
    """Why ``value`` cannot be ``key``'s value (None when it can, or when only the real parser can tell)."""
    entry = _schema()["keys"].get(key)
    kinds = entry and entry["accepts"]
    if not kinds or any(_fits(value, kind, text) for kind in kinds):
        return None
    return f"{key}: {text if text is not None else value!r} is not {_accepts_text(kinds)}"


def check_key(key: str) -> str | None:
    """Why ``key`` is not an option of ``fit`` (with a did-you-mean), or None when it is."""
    schema = _schema()
    if key in schema["keys"] or key in schema["groups"] or _owner(key, schema) is not None:
        return None
    return f"unknown key {key!r}{suggestion(key, [*schema['keys'], *schema['groups']])}"


def _entries(data: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of a nested config, not descending below the open keys or into the ``config`` key."""
    schema = _schema()
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and (key in schema["groups"] or (key not in schema["keys"] and _owner(key, schema) is None)):
            yield from _entries(value, f"{key}.")
        else:
            yield key, value


def check_mapping(data: Mapping, where: str, prefix: str = "") -> None:
    """Every key and value of a config mapping (a ``--config`` file, ``--data={...}``); raises naming ``where``."""
    for key, value in _entries(data, prefix):
        if key == "config" or key.startswith("config."):
            continue
        problem = check_key(key) or check_value(key, value)
        if problem:
            raise ConfigError(f"{where}: {problem}")


def check_config_file(name: str) -> None:
    """A ``--config`` file exists (or is a shipped config) and holds only known keys with fitting values."""
    try:
        path = resolve_config(name)
    except FileNotFoundError as error:
        raise ConfigError(f"--config: {error}") from None
    stat = path.stat()
    _check_config_contents(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _check_config_contents(path: str, mtime_ns: int, size: int) -> None:
    """:func:`check_config_file`'s reading, once per version of a file (its modification time and size)."""
    try:
        data = load_yaml(Path(path))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    check_mapping(data, f"config file {path}")


def _options(args: list[str]) -> Iterator[tuple[str, str | None]]:
    """``(--key, value or None)`` pairs of a command line, in order (``--key value`` and ``--key=value``)."""
    index = 0
    while index < len(args):
        arg = "--config" if args[index] == "-c" else args[index]
        index += 1
        if not arg.startswith("--"):
            yield arg, None
            continue
        if "=" in arg:
            key, value = arg.split("=", 1)
            yield key, value
        elif index < len(args) and not args[index].startswith("--"):
            yield arg, args[index]
            index += 1
        else:
            yield arg, None


def check_fit_args(args: list[str]) -> None:
    """Refuse a ``fit`` command line the parser would refuse: unknown keys, bad values, missing or bad config files.

    Raises :class:`~lightning_dims.errors.ConfigError` with one line naming the key (and the file).
    Options the schema cannot judge, and anything it does not understand, pass to the real parser.
    Each distinct option is judged once per process (a sweep's commands share most of theirs).
    """
    for option, text in _options(agent_values(list(args))):
        if option.startswith(SKIPPED) or option in ("-h", "--help") or option.endswith(".help"):
            return  # the real parser prints and exits; nothing to run
        if option == "--config":
            if text is not None:
                check_config_file(text)
        else:
            _check_option(option, text)


@lru_cache(maxsize=4096)
def _check_option(option: str, text: str | None) -> None:
    if not option.startswith("--"):
        return  # a stray value: the real parser names it
    key = option[2:].removesuffix("+")
    problem = check_key(key)
    if problem:
        raise ConfigError(f"{problem}; `lightning-dims fit --help` lists the keys")
    if text is None:
        return
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if key in _schema()["groups"] and isinstance(value, Mapping):
        check_mapping(value, f"--{key}", prefix=f"{key}.")
    elif not option.endswith("+"):
        problem = check_value(key, value, text)
        if problem:
            raise ConfigError(problem)


def check_evaluate_args(args: list[str]) -> None:
    """``validate``/``test``: their own ``--ckpt_path``/``--json``, the rest as ``fit`` options (:func:`check_fit_args`)."""
    rest, index = [], 0
    while index < len(args):
        arg = args[index]
        own = arg.split("=", 1)[0]
        if own in EVALUATE_OWN:
            index += 2 if EVALUATE_OWN[own] and "=" not in arg else 1
            continue
        if arg in ("-h", "--help"):
            return
        rest.append(arg)
        index += 1
    check_fit_args(rest)
