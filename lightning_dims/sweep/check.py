"""Check every command of a sweep before anything runs: a typo in a 972-run grid fails here, not on a cluster.

``lightning-dims fit`` commands are first held against the parser's schema
(:func:`~lightning_dims.training.precheck.check_fit_args`: an unknown key is named with a
did-you-mean), then parsed with the fit parser (both parses, the preset's defaults, every type
check), and what parsing does not check is checked without touching data or building networks:
the architecture is registered, the dataset is registered and accepts the options, sizes and
spec, and every callback of ``trainer.callbacks`` can be constructed with its arguments.

A grid's commands differ only in their parameters' values, so one parse per *command shape*
covers them (:func:`commands_to_parse`): a command is parsed when its shape is new (its parameter
names, the values of the settings the preset reads, and the paper-protocol files those select,
:data:`~lightning_dims.models.presets.DERIVED_FROM`) or when it holds a parameter value no parsed
command held. Every value of every parameter is thus parsed once, under every preset it meets:
the 972-command paper grid takes 28 parses instead of 972.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable

from lightning_dims.sweep.grid import SweepRun
from lightning_dims.utils import canonical_json, flatten

__all__ = [
    "FIT_PROGRAMS",
    "check_config",
    "check_runs",
    "command_shape",
    "commands_to_parse",
    "construct_callbacks",
    "fit_arguments",
    "schema_problems",
]

FIT_PROGRAMS = ("lightning-dims", "lightning_dims")


def fit_arguments(run: SweepRun) -> list[str] | None:
    """The arguments after ``fit`` when the run's command is ``lightning-dims fit ...``; None otherwise."""
    argv = list(run.argv)
    for index, token in enumerate(argv[:-1]):
        if token.split("/")[-1] in FIT_PROGRAMS or token == "-m" and argv[index + 1] in FIT_PROGRAMS:
            rest = argv[index + 1 :] if token != "-m" else argv[index + 2 :]
            return rest[1:] if rest and rest[0] == "fit" else None
    return None


def construct_callbacks(specs) -> None:
    """Build every ``{"class_path", "init_args"}`` callback (raises what its constructor raises)."""
    for spec in specs or []:
        spec = dict(spec) if not hasattr(spec, "as_dict") else spec.as_dict()
        module, _, name = str(spec["class_path"]).rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        cls(**dict(spec.get("init_args") or {}))


def check_config(config) -> None:
    """What parsing leaves unchecked: arch, dataset and its options, split sizes, spec, callbacks."""
    from lightning_dims.data.task import DatasetTask
    from lightning_dims.models.registry import arch_spec

    arch_spec(config.model.arch)
    data = config.data
    DatasetTask(
        name=data.name,
        classes=data.classes,
        train_size=data.train_size,
        val_size=data.val_size,
        test_size=data.test_size,
        size=data.size,
        channels=data.channels,
        intensity=data.intensity,
        seed=data.seed,
        data_root=data.data_root,
        options=data.dataset_options,
    )


def command_shape(parameters: dict) -> str:
    """What decides how a grid point's command parses besides its values' types (module docstring), as text."""
    from lightning_dims.models.presets import DERIVED_FROM, protocol_files

    leaves = flatten(parameters)
    inputs = {key: leaves[key] for key in DERIVED_FROM if key in leaves}
    try:
        protocol = protocol_files(str(leaves["model.arch"]), leaves.get("data.name")) if "model.arch" in leaves else None
    except ValueError:  # an unknown architecture: its own shape, and the parse names it
        protocol = None
    else:
        inputs = {key: value for key, value in inputs.items() if key not in ("model.arch", "data.name")}
    return canonical_json({"keys": sorted(leaves), "inputs": inputs, "protocol": protocol})


def commands_to_parse(runs: Iterable[SweepRun]) -> list[SweepRun]:
    """The fit commands of ``runs`` that together hold every command shape and every parameter value (module docstring)."""
    chosen, shapes, values = [], set(), set()
    for run in runs:
        if fit_arguments(run) is None:
            continue
        shape = command_shape(run.parameters)
        held = {canonical_json([key, value]) for key, value in flatten(run.parameters).items()}
        if shape not in shapes or not held <= values:
            chosen.append(run)
            shapes.add(shape)
            values |= held
    return chosen


def schema_problems(runs: Iterable[SweepRun]) -> list[tuple[str, str]]:
    """``(run_id, error)`` for the first fit command showing each problem the parser's schema finds
    (:func:`~lightning_dims.training.precheck.check_fit_args`; no torch needed)."""
    from lightning_dims.errors import ConfigError
    from lightning_dims.training.precheck import check_fit_args

    problems: dict[str, str] = {}
    for run in runs:
        args = fit_arguments(run)
        try:
            if args is not None:
                check_fit_args(args)
        except ConfigError as error:
            problems.setdefault(str(error), run.run_id)
    return [(run_id, problem) for problem, run_id in problems.items()]


def check_runs(runs: Iterable[SweepRun]) -> list[tuple[str, str]]:
    """``(run_id, error)`` for the fit commands of ``runs`` that would fail before training; [] when all pass.

    Only :func:`commands_to_parse` are parsed; a problem is reported against the first command
    that shows it (the others of its shape fail alike).
    """
    runs = list(runs)
    problems = schema_problems(runs)
    if problems:  # named without loading torch, Lightning or W&B
        return problems
    from lightning_dims.compat import parser_error_line
    from lightning_dims.training.config_parser import FitConfigParser

    parser = FitConfigParser()
    checked_callbacks = set()
    for run in commands_to_parse(runs):
        args = fit_arguments(run)
        try:
            config = parser.parse(args)
            check_config(config)
            callbacks = json.loads(json.dumps(config.trainer.callbacks or [], default=lambda o: o.as_dict()))
            key = canonical_json(callbacks)
            if key not in checked_callbacks:
                construct_callbacks(callbacks)
                checked_callbacks.add(key)
        except Exception as error:  # every failure is reported against its run, the check goes on
            problems.append((run.run_id, parser_error_line(error)))
    return problems
