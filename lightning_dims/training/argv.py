"""``fit``'s command line before parsing: shipped config names as files, ``wandb agent``'s values as JSON.

Pure functions of a list of arguments; :class:`~lightning_dims.training.fit_cli.FitCLI` applies
:func:`agent_values` then :func:`expand_config_names` to every command line, and parses a first
time without ``--print_config`` (:func:`without_print_config`) to find the defaults that depend
on other settings.
"""

from __future__ import annotations

import ast
import json

from lightning_dims.configs import resolve_config

__all__ = ["agent_values", "expand_config_names", "python_literal_as_json", "without_print_config"]


def expand_config_names(args: list[str]) -> list[str]:
    """``--config NAME`` of a shipped config (``callbacks/fast``) as its file; paths that exist are kept."""
    expanded, take_next = [], False
    for arg in args:
        if take_next:
            expanded.append(str(resolve_config(arg)))
            take_next = False
        elif arg == "--config":
            expanded.append(arg)
            take_next = True
        elif arg.startswith("--config="):
            expanded.append(f"--config={resolve_config(arg.split('=', 1)[1])}")
        else:
            expanded.append(arg)
    return expanded


def python_literal_as_json(value: str) -> str:
    """A value as ``wandb agent`` writes it (``str()`` of a Python object: ``{'a': None}``, ``None``) as JSON.

    jsonargparse reads YAML, where ``None`` is the string "None"; containers and ``None`` are
    parsed with ``ast.literal_eval`` and re-written as JSON. Anything else is returned unchanged.
    """
    text = value.strip()
    if text == "None":
        return "null"
    if not text[:1] in ("{", "["):
        return value
    try:
        return json.dumps(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        return value  # not a Python literal (e.g. already JSON with true/null): leave it to the parser


def agent_values(args: list[str]) -> list[str]:
    """``args`` with every option value written as ``wandb agent`` writes it made parseable (see above)."""
    normalised = []
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            normalised.append(f"{key}={python_literal_as_json(value)}")
        elif not arg.startswith("--"):
            normalised.append(python_literal_as_json(arg))
        else:
            normalised.append(arg)
    return normalised


def without_print_config(args: list[str]) -> list[str]:
    """``args`` minus ``--print_config[=...]`` (the first, defaults-finding parse must not print and exit)."""
    return [arg for arg in args if arg != "--print_config" and not arg.startswith("--print_config=")]
