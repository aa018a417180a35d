"""Expand a W&B sweep file (``method: grid``) into the runs an agent would launch.

The same YAML serves ``wandb sweep`` + ``wandb agent`` (online) and ``lightning-dims sweep``
(offline, no server). Supported: ``parameters`` with ``value`` or ``values`` (dotted names such
as ``model.arch``, or W&B's nested ``parameters:`` blocks, which are flattened to dotted names),
and ``command`` with the macros ``${env}``, ``${interpreter}``, ``${program}``, ``${args}``,
``${args_no_hyphens}``. Random and Bayesian sweeps need a W&B server and are refused with that fix.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


class SweepFileError(ValueError):
    """The sweep file cannot be run offline as written."""


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid.

    Attributes:
        run_id: stable id from the parameters (the same grid point always gets the same id).
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


def run_id_for(parameters: Mapping[str, Any]) -> str:
    """Stable 12-hex-digit id of a grid point (sha256 of its sorted JSON)."""
    canonical = json.dumps(dict(sorted(parameters.items())), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


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
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file {str(path)!r} not found (see sweeps/ for examples)")
    with path.open() as handle:
        config = yaml.safe_load(handle)
    if not isinstance(config, Mapping) or "parameters" not in config:
        raise SweepFileError(f"{path}: a sweep file needs a top-level 'parameters' mapping")
    method = config.get("method", "grid")
    if method != "grid":
        raise SweepFileError(
            f"{path}: method {method!r} needs a W&B server to choose runs; offline sweeps run 'grid' "
            "(use `wandb sweep` + `wandb agent`, or change method to grid)"
        )
    return dict(config)


def expand_grid(config: Mapping) -> list[SweepRun]:
    """All grid points in a stable order (the file's parameter order, last parameter fastest)."""
    grid = flatten_parameters(config["parameters"])
    command = config.get("command", DEFAULT_COMMAND)
    program = config.get("program")
    runs = []
    for values in itertools.product(*grid.values()):
        parameters = dict(zip(grid.keys(), values))
        runs.append(SweepRun(run_id_for(parameters), parameters, expand_command(command, parameters, program)))
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
