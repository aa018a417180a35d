"""Expand a W&B sweep file (``method: grid``) into the runs an agent would launch, each with a stable id.

The same YAML serves ``wandb sweep`` + ``wandb agent`` (online) and ``lightning-dims sweep``
(offline, no server). Supported: ``parameters`` with ``value`` or ``values`` (dotted names such
as ``model.arch``, or W&B's nested ``parameters:`` blocks, which are flattened to dotted names),
and ``command`` with the macros ``${env}``, ``${interpreter}``, ``${program}``, ``${args}``,
``${args_no_hyphens}``. Random and Bayesian sweeps need a W&B server and are refused with that fix.

Run ids: ``<readable label>-<12 hex>``, the hex a hash of the grid point's parameters **and** the
whole command template (program, fixed flags, and the contents of every ``--config`` file it
names). The same point of the same sweep always gets the same id, on any machine; changing any
fixed setting (``--trainer.max_epochs``, a callback in ``callbacks/fast.yaml``) gives new ids, so
results made under other settings are never served for the new ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lightning_dims.errors import LightningDimsError

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


class SweepFileError(LightningDimsError, ValueError):
    """The sweep file cannot be run offline as written."""


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid.

    Attributes:
        run_id: stable id from the parameters and the command (see the module docstring).
        parameters: dotted parameter name -> value.
        argv: the command to run, macros expanded.
    """

    run_id: str
    parameters: dict[str, Any]
    argv: list[str]


def flatten_parameters(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, list]:
    """Dotted name -> list of grid values, from W&B ``parameters`` (``value``/``values``/nested)."""
    flat: dict[str, list] = {}
    for name, spec in parameters.items():
        dotted = f"{prefix}{name}"
        if not isinstance(spec, Mapping):
            raise SweepFileError(f"parameter {dotted!r} must be a mapping with 'value' or 'values', got {spec!r}")
        if "parameters" in spec:
            flat.update(flatten_parameters(spec["parameters"], prefix=f"{dotted}."))
        elif "values" in spec:
            if not isinstance(spec["values"], list) or not spec["values"]:
                raise SweepFileError(f"parameter {dotted!r}: 'values' must be a non-empty list")
            flat[dotted] = list(spec["values"])
        elif "value" in spec:
            flat[dotted] = [spec["value"]]
        else:
            raise SweepFileError(
                f"parameter {dotted!r} has neither 'value' nor 'values' ({sorted(spec)}): offline grid sweeps "
                "cannot sample distributions; list the values, or run it with `wandb sweep` + `wandb agent`"
            )
    return flat


def format_value(value: Any) -> str:
    """A parameter value as a command-line string (lists and dicts as JSON, like W&B)."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def point_label(parameters: Mapping[str, Any], limit: int = 48) -> str:
    """A short readable name of a grid point: scalar values, and the ``name`` of dict values, joined by ``-``."""
    parts = []
    for value in parameters.values():
        if isinstance(value, Mapping):
            value = value.get("name")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            parts.append(re.sub(r"[^A-Za-z0-9]+", "", str(value)))
    return "-".join(part for part in parts if part)[:limit].strip("-")


def run_id_for(parameters: Mapping[str, Any], command_identity: str = "") -> str:
    """Stable id of a grid point of a sweep: ``<label>-<12 hex of sha256(parameters, command identity)>``."""
    canonical = json.dumps(
        {"parameters": dict(sorted(parameters.items())), "command": command_identity}, sort_keys=True, default=str
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    label = point_label(parameters)
    return f"{label}-{digest}" if label else digest


def config_files_in(command: list[str]) -> list[str]:
    """The values of ``--config FILE`` / ``--config=FILE`` in a command template."""
    files = []
    for index, token in enumerate(command):
        if token.startswith("--config="):
            files.append(token.split("=", 1)[1])
        elif token == "--config" and index + 1 < len(command):
            files.append(command[index + 1])
    return files


def command_identity(config: Mapping, cwd: Path | None = None) -> str:
    """Hash of what a sweep's runs have in common: program, command template, contents of its ``--config`` files."""
    from lightning_dims.configs import resolve_config

    command = [str(token) for token in config.get("command", DEFAULT_COMMAND)]
    contents = {}
    for name in config_files_in(command):
        path = Path(name) if Path(name).is_absolute() or cwd is None else Path(cwd) / name
        try:
            contents[name] = hashlib.sha256(resolve_config(path if path.is_file() else name).read_bytes()).hexdigest()
        except FileNotFoundError:
            contents[name] = None  # fit reports the missing file when the run starts
    payload = {"program": config.get("program"), "command": command, "config_files": contents}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def expand_command(command: list[str], parameters: Mapping[str, Any], program: str | None) -> list[str]:
    """W&B's command macros with the run's parameters."""
    argv: list[str] = []
    for token in command:
        if token == "${env}":
            continue
        if token == "${interpreter}":
            if program and program.endswith(".py"):
                argv.append(sys.executable)
        elif token == "${program}":
            if not program:
                raise SweepFileError("the command uses ${program} but the sweep file has no 'program'")
            argv.append(program)
        elif token == "${args}":
            argv += [f"--{name}={format_value(value)}" for name, value in parameters.items()]
        elif token == "${args_no_hyphens}":
            argv += [f"{name}={format_value(value)}" for name, value in parameters.items()]
        else:
            argv.append(token)
    return argv


def load_sweep(path: str | Path) -> dict:
    """A sweep file as a dict: a path, or the name of a shipped sweep (``sweeps/quick``); errors name file and line."""
    from lightning_dims.configs import load_yaml, resolve_config

    try:
        path = resolve_config(path)
    except FileNotFoundError as error:
        raise SweepFileError(f"sweep file {str(path)!r} not found ({error})") from None
    try:
        config = load_yaml(path)
    except ValueError as error:
        raise SweepFileError(str(error)) from None
    if "parameters" not in config:
        raise SweepFileError(f"{path}: a sweep file needs a top-level 'parameters' mapping")
    method = config.get("method", "grid")
    if method != "grid":
        raise SweepFileError(
            f"{path}: method {method!r} needs a W&B server to choose runs; offline sweeps run 'grid' "
            "(use `wandb sweep` + `wandb agent`, or change method to grid)"
        )
    if not isinstance(config["parameters"], Mapping):
        raise SweepFileError(f"{path}: 'parameters' must be a mapping of parameter names to value/values")
    return dict(config)


def expand_grid(config: Mapping, cwd: Path | None = None) -> list[SweepRun]:
    """All grid points in a stable order (the file's parameter order, last parameter fastest).

    ``cwd``: the folder the commands will run in (relative ``--config`` files resolve there).
    """
    grid = flatten_parameters(config["parameters"])
    command = config.get("command", DEFAULT_COMMAND)
    program = config.get("program")
    identity = command_identity(config, cwd)
    runs = []
    for values in itertools.product(*grid.values()):
        parameters = dict(zip(grid.keys(), values))
        runs.append(SweepRun(run_id_for(parameters, identity), parameters, expand_command(command, parameters, program)))
    return runs


def shard(runs: list[SweepRun], spec: str) -> list[SweepRun]:
    """The runs of shard ``i/n`` (1-based ``i``): every n-th run starting at the i-th."""
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        raise SweepFileError(f"--shard takes i/n such as 2/4, got {spec!r}") from None
    if not 1 <= index <= count:
        raise SweepFileError(f"--shard {spec}: i must be between 1 and n")
    return runs[index - 1 :: count]
