"""Expand a W&B sweep file (``method: grid``) into the runs an agent would launch, each with a stable id.

The same YAML serves ``wandb sweep`` + ``wandb agent`` (online) and ``lightning-dims sweep``
(offline, no server), and a grid point gets the same command either way: parameters with
``value`` or ``values`` (dotted names such as ``model.arch``; a nested ``parameters:`` block is
one dict-valued parameter, as W&B sends it), the command built with wandb's own functions and
every macro ``wandb agent`` knows (:func:`expand_command`). Random and Bayesian sweeps need a W&B
server and are refused with that fix.

Run ids: ``<readable label>-<12 hex>``, the hex a hash of the grid point's parameters **and** the
whole command template (program, fixed flags, and the contents of every ``--config`` file it
names). The same point of the same sweep always gets the same id, on any machine; changing any
fixed setting (``--trainer.max_epochs``, a callback in ``callbacks/fast.yaml``) gives new ids, so
results made under other settings are never served for the new ones.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lightning_dims.compat import sweep_command_builders
from lightning_dims.errors import LightningDimsError
from lightning_dims.utils import canonical_json, digest, file_digest

__all__ = [
    "ARGS_JSON_FILE",
    "DEFAULT_COMMAND",
    "KNOWN_MACROS",
    "PROGRAM_ALIASES",
    "SWEEP_ENVIRONMENT",
    "SWEEP_METHODS",
    "SweepFileError",
    "SweepRun",
    "command_identity",
    "config_files_in",
    "expand_command",
    "expand_grid",
    "grid_parameters",
    "load_sweep",
    "point_label",
    "run_id_for",
    "runnable",
    "shard",
]

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
"""wandb's default command (``wandb.sdk.launch.sweeps.utils.DEFAULT_SWEEP_COMMAND``)."""

PROGRAM_ALIASES = {"lightning-dims": [sys.executable, "-m", "lightning_dims"]}
"""Programs run through this interpreter, so a sweep uses the installation that launched it."""


SWEEP_METHODS = ("grid", "random", "bayes")
"""The ``method`` values a W&B sweep file takes (W&B's sweep configuration reference); offline: ``grid`` only."""


class SweepFileError(LightningDimsError, ValueError):
    """The sweep file cannot be run offline as written."""


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid.

    Attributes:
        run_id: stable id from the parameters and the command (see the module docstring).
        parameters: dotted parameter name -> value.
        argv: the command to run, macros expanded.
        environment: W&B variables for the run (:data:`SWEEP_ENVIRONMENT`): ``WANDB_PROJECT``/``WANDB_ENTITY``
            from the sweep file's ``project``/``entity`` (as ``wandb agent`` sets them), ``WANDB_RUN_GROUP``
            from its ``name``.
    """

    run_id: str
    parameters: dict[str, Any]
    argv: list[str]
    environment: dict[str, str] = field(default_factory=dict)


def grid_parameters(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, list]:
    """Parameter name -> its grid values, as W&B's sweep engine sends them to an agent.

    ``value``/``values`` give one or several values; a nested ``parameters:`` block is one
    parameter whose values are dicts, the product of its inner parameters (W&B passes nested
    parameters to the program as one dict-valued argument, ``--data={'name': 'digits', ...}``).
    """
    grid: dict[str, list] = {}
    for name, spec in parameters.items():
        where = f"{prefix}{name}"
        if not isinstance(spec, Mapping):
            raise SweepFileError(f"parameter {where!r} must be a mapping with 'value' or 'values', got {spec!r}")
        if "parameters" in spec:
            inner = grid_parameters(spec["parameters"], prefix=f"{where}.")
            grid[name] = [dict(zip(inner, values)) for values in itertools.product(*inner.values())]
        elif "values" in spec:
            if not isinstance(spec["values"], list) or not spec["values"]:
                raise SweepFileError(f"parameter {where!r}: 'values' must be a non-empty list")
            grid[name] = list(spec["values"])
        elif "value" in spec:
            grid[name] = [spec["value"]]
        else:
            raise SweepFileError(
                f"parameter {where!r} has neither 'value' nor 'values' ({sorted(spec)}): offline grid sweeps "
                "cannot sample distributions; list the values, or run it with `wandb sweep` + `wandb agent`"
            )
    return grid


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
    point = {"parameters": dict(sorted(parameters.items())), "command": command_identity}
    hashed = digest(canonical_json(point, compact=False), 12)
    label = point_label(parameters)
    return f"{label}-{hashed}" if label else hashed


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
            contents[name] = file_digest(resolve_config(path if path.is_file() else name))
        except FileNotFoundError:
            contents[name] = None  # fit reports the missing file when the run starts
    payload = {"program": config.get("program"), "command": command, "config_files": contents}
    return digest(canonical_json(payload, compact=False, strict=True))


KNOWN_MACROS = frozenset(
    {"env", "interpreter", "program", "args", "args_no_equals", "args_no_hyphens", "args_no_boolean_flags",
     "args_json", "args_json_file", "args_append_hydra", "args_override_hydra"}
)  # fmt: skip
"""The macros ``wandb agent`` expands (``wandb_agent.Agent._command_run``); ``${envvar:NAME}`` too."""

ARGS_JSON_FILE = "${args_json_file}"
"""Left in the argv: the runner writes the run's arguments as JSON and puts the file's path here."""


def expand_command(command: list[str], parameters: Mapping[str, Any], program: str | None) -> list[str]:
    """The argv ``wandb agent`` would run for one grid point, built with wandb's own functions.

    ``create_sweep_command`` fills ``${envvar:NAME}``, ``create_sweep_command_args`` formats the
    values (``--name=<str(value)>``: Python repr for dicts, lists, None and booleans, as the agent
    writes them). Two deliberate differences, so a local sweep uses the installation that started
    it: ``${env}`` is dropped (the agent's ``/usr/bin/env`` only searches PATH) and
    ``${interpreter}`` is this Python (the agent's is ``python`` from PATH). ``${args_json_file}``
    is filled by the runner. An unknown macro is an error (the agent would silently drop it).
    """
    create_sweep_command, create_sweep_command_args = sweep_command_builders()
    template = create_sweep_command([str(token) for token in command])
    macros = create_sweep_command_args({"args": {name: {"value": value} for name, value in parameters.items()}})
    argv: list[str] = []
    for token in template:
        if not (token.startswith("${") and token.endswith("}")):
            argv.append(token)
            continue
        macro = token[2:-1]
        if macro not in KNOWN_MACROS:
            raise SweepFileError(
                f"unknown macro {token} in the sweep's command; wandb agent knows ${{{'}, ${'.join(sorted(KNOWN_MACROS))}}} "
                "and ${envvar:NAME}"
            )
        if macro == "env":
            continue
        if macro == "interpreter":
            argv.append(sys.executable)
        elif macro == "program":
            if not program:
                raise SweepFileError("the command uses ${program} but the sweep file has no 'program'")
            argv.append(str(program))
        elif macro == "args_json_file":
            argv.append(ARGS_JSON_FILE)
        else:
            argv += [str(item) for item in macros[macro]]
    return argv


def runnable(argv: list[str], parameters: Mapping[str, Any], args_json: Path) -> list[str]:
    """``argv`` ready to start: ``${args_json_file}`` written (the parameters as JSON, to ``args_json``)
    and a :data:`PROGRAM_ALIASES` program resolved."""
    argv = list(argv)
    if ARGS_JSON_FILE in argv:
        args_json.parent.mkdir(parents=True, exist_ok=True)
        args_json.write_text(json.dumps(dict(parameters)))
        argv = [str(args_json) if token == ARGS_JSON_FILE else token for token in argv]
    if argv and argv[0] in PROGRAM_ALIASES:
        argv = PROGRAM_ALIASES[argv[0]] + argv[1:]
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
    if method not in SWEEP_METHODS:
        close = difflib.get_close_matches(str(method), SWEEP_METHODS, n=1)
        raise SweepFileError(
            f"{path}: unknown sweep method {method!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
            f"W&B sweeps take {', '.join(SWEEP_METHODS)}"
        )
    if method != "grid":
        raise SweepFileError(
            f"{path}: method {method!r} needs a W&B server to choose runs; offline sweeps run 'grid' "
            "(use `wandb sweep` + `wandb agent`, or change method to grid)"
        )
    if not isinstance(config["parameters"], Mapping):
        raise SweepFileError(f"{path}: 'parameters' must be a mapping of parameter names to value/values")
    return dict(config)


SWEEP_ENVIRONMENT = (("project", "WANDB_PROJECT"), ("entity", "WANDB_ENTITY"), ("name", "WANDB_RUN_GROUP"))
"""Sweep-file keys passed to each run as W&B's variables: its project, entity, and its ``name`` as the runs' group."""


def expand_grid(config: Mapping, cwd: Path | None = None) -> list[SweepRun]:
    """All grid points in a stable order (the file's parameter order, last parameter fastest).

    ``cwd``: the folder the commands will run in (relative ``--config`` files resolve there).
    """
    grid = grid_parameters(config["parameters"])
    command = config.get("command", DEFAULT_COMMAND)
    program = config.get("program")
    identity = command_identity(config, cwd)
    environment = {name: str(config[key]) for key, name in SWEEP_ENVIRONMENT if config.get(key)}
    runs = []
    for values in itertools.product(*grid.values()):
        parameters = dict(zip(grid.keys(), values))
        argv = expand_command(command, parameters, program)
        runs.append(SweepRun(run_id_for(parameters, identity), parameters, argv, environment))
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
